#!/usr/bin/env Rscript
## generate_batch_unweighted.R -- batch/results_unweighted.json: the genes of batch/expression.csv
## fitted WITHOUT weights, each as lme4 + lmerTest fit it:
##   lme4::lmer(y ~ condition + age + (1 | donor) + (1 | batch), REML = TRUE) on samples.csv with
##   y = the gene's row (NaN samples dropped), lme4 defaults; Satterthwaite tests from
##   summary(lmerTest::as_lmerModLmerTest(m), ddf = "Satterthwaite").
## The constant gene G005 is left out (lme4 returns optimizer noise for it; see results.json).
## Numbers are written with 15 significant digits (far below the tests' tolerances).
## Usage (in this folder):  nice -n 19 Rscript generate_batch_unweighted.R
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(jsonlite)
})
lmer <- lme4::lmer
here <- function() {
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
}
dir <- file.path(here(), "batch")
samples <- read.csv(file.path(dir, "samples.csv"), stringsAsFactors = TRUE)
expression <- read.csv(file.path(dir, "expression.csv"), check.names = FALSE)
genes <- list()
for (g in seq_len(nrow(expression))) {
  name <- expression$gene[g]
  if (name == "G005") next
  data <- samples
  data$y <- as.numeric(expression[g, -1])
  data <- data[!is.na(data$y), ]
  warnings <- character(0)
  m <- withCallingHandlers(
    lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, REML = TRUE),
    warning = function(w) { warnings <<- c(warnings, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) invokeRestart("muffleMessage"))
  s <- summary(as_lmerModLmerTest(m), ddf = "Satterthwaite")$coefficients
  genes[[length(genes) + 1]] <- list(
    gene = name, n_used = nrow(data),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    sigma = sigma(m), logLik = as.numeric(logLik(m)), isSingular = isSingular(m),
    satterthwaite = list(df = as.list(s[, "df"]), t = as.list(s[, "t value"]), p = as.list(s[, "Pr(>|t|)"])),
    warnings = warnings)
}
out <- list(
  what = "per-gene lme4 REML fits of batch/expression.csv without weights (generate_batch_unweighted.R)",
  formula = "y ~ condition + age + (1 | donor) + (1 | batch)",
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  genes = genes)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), null = "null", na = "null"),
           file.path(dir, "results_unweighted.json"))
