#!/usr/bin/env Rscript
## generate_zero_weights.R -- fits with some prior weights 0 (the row carries no information).
## glmer (lme4 1.1-31) fits them directly: estimates, logLik and SEs are those of the fit without
## the rows, while nobs(), df.residual() and BIC() still count them; their fitted values are
## given and their deviance and Pearson residuals are 0. lmer cannot: its criterion has
## -sum(log(w)) = Inf at every theta, so the optimiser stops at the start and logLik is -Inf
## (recorded under lmer_direct). For the LMM the reference is therefore lme4's fit to the rows
## of positive weight, with the zero-weight rows' fitted values from predict() on it, and
## nobs/df.residual as lme4 counts them (all rows).
## Writes zero_weights.json next to this script. Usage: cd tests/reference && Rscript generate_zero_weights.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
read <- function(name, factors) read.csv(file.path(here, "data", name), colClasses = setNames(rep("character", length(factors)), factors))
as_factors <- function(d, factors) { for (f in factors) d[[f]] <- factor(d[[f]]); d }
sleep <- as_factors(read("sleepstudy.csv.gz", "Subject"), "Subject")
cbpp_data <- as_factors(read("cbpp.csv.gz", c("herd", "period")), c("herd", "period"))
ticks <- as_factors(read("grouseticks.csv.gz", c("BROOD", "YEAR", "INDEX", "LOCATION")), c("BROOD", "YEAR"))

estimates <- function(m) list(
  fixef = as.list(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
  theta = unname(getME(m, "theta")), sigma = sigma(m), logLik = as.numeric(logLik(m)))

## LMM: weights 1, 2, 0.5 in turn, four rows 0.
sleep_w <- rep(c(1, 2, 0.5), length.out = nrow(sleep))
zero <- c(3L, 50L, 100L, 101L)
sleep_w[zero] <- 0
lmm <- function(REML) {
  direct <- suppressWarnings(lmer(Reaction ~ Days + (Days | Subject), sleep, weights = sleep_w, REML = REML))
  kept <- lmer(Reaction ~ Days + (Days | Subject), sleep[sleep_w > 0, ], weights = sleep_w[sleep_w > 0], REML = REML)
  fitted_zero <- unname(predict(kept, newdata = sleep[zero, ]))
  c(estimates(kept), list(
    REMLcrit = if (REML) REMLcrit(kept) else NULL, deviance = deviance(kept, REML = FALSE),
    AIC = AIC(kept), nobs = nobs(direct), df_residual = df.residual(direct),
    fitted_zero = fitted_zero, residual_zero = sleep$Reaction[zero] - fitted_zero,
    lmer_direct = list(logLik = as.character(as.numeric(logLik(direct))), nobs = nobs(direct),
                       theta = unname(getME(direct, "theta")))))
}

glmm <- function(m, zero) c(estimates(m), list(
  deviance = deviance(m), nobs = nobs(m), df_residual = df.residual(m), AIC = AIC(m), BIC = BIC(m),
  fitted_zero = unname(fitted(m)[zero]), eta_zero = unname(predict(m)[zero]),
  residual_zero = list(deviance = unname(residuals(m, "deviance")[zero]), pearson = unname(residuals(m, "pearson")[zero]),
                       response = unname(residuals(m, "response")[zero]), working = unname(residuals(m, "working")[zero]))))

## Binomial proportions with trials as weights; three herds' rows get weight 0.
cbpp_zero <- c(2L, 10L, 30L)
cbpp_w <- cbpp_data$size
cbpp_w[cbpp_zero] <- 0
cbpp_fit <- glmer(incidence / size ~ period + (1 | herd), cbpp_data, family = binomial, weights = cbpp_w)
## cbind() with no trials in two rows (lme4's binomial initialize takes y = 0 there, weight 0).
cbpp_none <- cbpp_data
cbpp_none$incidence[cbpp_zero[1:2]] <- 0
cbpp_none$size[cbpp_zero[1:2]] <- 0
cbind_fit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp_none, family = binomial)
## Poisson with weights 1, 2, 1, 0.5 in turn, three rows 0.
ticks_zero <- c(5L, 17L, 200L)
ticks_w <- rep(c(1, 2, 1, 0.5), length.out = nrow(ticks))
ticks_w[ticks_zero] <- 0
ticks_fit <- glmer(TICKS ~ YEAR + (1 | BROOD), ticks, family = poisson, weights = ticks_w)

## Gamma (a dispersion family): sigma() counts the zero-weight rows in its n, as nobs() does.
gamma_data <- read.csv(file.path(here, "data", "synth_gamma.csv.gz"), colClasses = c(g = "character"))
gamma_data$g <- factor(gamma_data$g)
gamma_zero <- c(3L, 40L, 77L)
gamma_w <- rep(1, nrow(gamma_data))
gamma_w[gamma_zero] <- 0
gamma_fit <- suppressWarnings(glmer(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"), weights = gamma_w))

out <- list(
  sleepstudy = list(formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy.csv.gz", weights = sleep_w,
                    zero_rows = zero, REML = lmm(TRUE), ML = lmm(FALSE)),
  cbpp_weights = c(list(formula = "incidence / size ~ period + (1 | herd)", data = "cbpp.csv.gz", weights = cbpp_w,
                        zero_rows = cbpp_zero), glmm(cbpp_fit, cbpp_zero)),
  cbpp_cbind_no_trials = c(list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", data = "cbpp.csv.gz",
                                no_trial_rows = cbpp_zero[1:2], definition = "incidence and size set to 0 in no_trial_rows"),
                           glmm(cbind_fit, cbpp_zero[1:2])),
  grouseticks = c(list(formula = "TICKS ~ YEAR + (1 | BROOD)", data = "grouseticks.csv.gz", weights = ticks_w,
                       zero_rows = ticks_zero), glmm(ticks_fit, ticks_zero)),
  synth_gamma = c(list(formula = "y ~ x + (1 | g)", family = "Gamma(link = 'log')", data = "synth_gamma.csv.gz",
                       weights = gamma_w, zero_rows = gamma_zero), glmm(gamma_fit, gamma_zero)),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), file.path(here, "zero_weights.json"))
