#!/usr/bin/env Rscript
## generate_binary_responses.R -- glmer fits of binomial responses that are not numbers: R takes a
## factor's first level as failure and every other level as success, and logical TRUE as success.
## Writes binary_responses.json next to this script. Usage: cd tests/reference && Rscript generate_binary_responses.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
ticks <- read.csv(file.path(here, "data", "grouseticks.csv.gz"), colClasses = c(BROOD = "character", YEAR = "character"))
ticks$BROOD <- factor(ticks$BROOD)
ticks$YEAR <- factor(ticks$YEAR)
fit <- function(response) {
  data <- ticks
  data$infested <- response
  m <- glmer(infested ~ YEAR + cHEIGHT + (1 | BROOD), data = data, family = binomial)
  list(fixef = as.list(fixef(m)), theta = unname(getME(m, "theta")), logLik = as.numeric(logLik(m)))
}
out <- list(
  data = "grouseticks.csv.gz", formula = "infested ~ YEAR + cHEIGHT + (1 | BROOD)", family = "binomial",
  factor_none_first = c(fit(factor(ifelse(ticks$TICKS > 0, "ticks", "none"), levels = c("none", "ticks"))),
                        definition = "factor(ifelse(TICKS > 0, 'ticks', 'none'), levels = c('none', 'ticks'))"),
  factor_ticks_first = c(fit(factor(ifelse(ticks$TICKS > 0, "ticks", "none"), levels = c("ticks", "none"))),
                         definition = "factor(ifelse(TICKS > 0, 'ticks', 'none'), levels = c('ticks', 'none'))"),
  logical = c(fit(ticks$TICKS > 0), definition = "TICKS > 0"),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "binary_responses.json"))
