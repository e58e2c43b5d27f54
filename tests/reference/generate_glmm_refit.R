#!/usr/bin/env Rscript
## generate_glmm_refit.R -- lme4's refit(m, newresp) of glmer fits to responses simulated from
## them (written into the json): cbpp's cbind() model refitted to a two-column matrix of
## successes and failures (lme4 takes its row sums as the new weights), cbpp's proportion model
## (weights = size) refitted to proportions, and grouseticks' Poisson model to new counts.
## lme4's refit() gives the estimates and logLik of a fresh glmer() fit of the new response, but
## standard errors up to 1% apart from that fit's (its finite-difference Hessian is taken by
## refit()'s own deviance function); fresh_se holds the fresh fit's, which a fit from scratch
## reproduces.
## Writes glmm_refit.json next to this script. Usage: cd tests/reference && Rscript generate_glmm_refit.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
read <- function(name, factors) {
  d <- read.csv(file.path(here, "data", name), colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
cbpp_data <- read("cbpp.csv.gz", c("herd", "period"))
ticks <- read("grouseticks.csv.gz", c("BROOD", "YEAR"))

se <- function(m) unname(sqrt(diag(as.matrix(vcov(m)))))
refitted <- function(m, fresh) list(
  fixef = as.list(fixef(m)), se = se(m), fresh_se = se(fresh),
  theta = unname(getME(m, "theta")), logLik = as.numeric(logLik(m)), deviance = deviance(m))

cbind_model <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp_data, family = binomial)
counts <- simulate(cbind_model, seed = 1)[[1]]
proportion_model <- glmer(incidence / size ~ period + (1 | herd), cbpp_data, family = binomial, weights = size)
proportions <- simulate(proportion_model, seed = 2)[[1]]
poisson_model <- glmer(TICKS ~ YEAR + (1 | BROOD), ticks, family = poisson)
ticks_new <- simulate(poisson_model, seed = 3)[[1]]
new_data <- cbind(cbpp_data, s = counts[, 1], f = counts[, 2], p = proportions)
fresh_cbind <- glmer(cbind(s, f) ~ period + (1 | herd), new_data, family = binomial)
fresh_proportions <- glmer(p ~ period + (1 | herd), new_data, family = binomial, weights = size)
fresh_poisson <- glmer(new ~ YEAR + (1 | BROOD), cbind(ticks, new = ticks_new), family = poisson)

out <- list(
  cbpp_cbind = c(list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", data = "cbpp.csv.gz",
                      successes = unname(counts[, 1]), failures = unname(counts[, 2])),
                 refitted(refit(cbind_model, counts), fresh_cbind)),
  cbpp_proportions = c(list(formula = "incidence / size ~ period + (1 | herd)", weights = "size", data = "cbpp.csv.gz",
                            response = proportions),
                       refitted(refit(proportion_model, proportions), fresh_proportions)),
  grouseticks = c(list(formula = "TICKS ~ YEAR + (1 | BROOD)", family = "poisson", data = "grouseticks.csv.gz",
                       response = ticks_new),
                  refitted(refit(poisson_model, ticks_new), fresh_poisson)),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "glmm_refit.json"))
