#!/usr/bin/env Rscript
## generate_augment.R -- broom.mixed's augment() columns and lme4's observation-level
## cooks.distance(m) (the approximation from hat values and Pearson residuals,
## (r_i / (1 - h_i))^2 h_i / (sigma^2 rank(X))) for one LMM and one GLMM, written to augment.json
## next to this script. The data are lme4's own sleepstudy and cbpp (identical to the package's
## datasets, rows in the same order).
##
## Usage:  cd tests/reference && Rscript generate_augment.R
## Requires: lme4, broom.mixed, jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(broom.mixed)
  library(jsonlite)
})
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
columns <- function(m) {
  a <- suppressWarnings(augment(m))
  list(
    formula = paste(deparse(formula(m)), collapse = ""),
    fitted = a$.fitted, resid = a$.resid, hat = a$.hat, cooksd = a$.cooksd, fixed = a$.fixed,
    mu = a$.mu, cooks_distance = unname(suppressWarnings(cooks.distance(m))),
    pearson = unname(residuals(m, type = "pearson"))
  )
}
lmm <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
glmm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
out <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  broom.mixed = as.character(packageVersion("broom.mixed"))),
  sleepstudy_reml = columns(lmm),
  cbpp_binomial = columns(glmm)
)
write_json(out, file.path(here, "augment.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
