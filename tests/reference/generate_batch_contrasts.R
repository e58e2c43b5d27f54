#!/usr/bin/env Rscript
## generate_batch_contrasts.R -- batch/contrasts.json: t-tests of two linear combinations of the
## fixed effects for every gene of batch/expression.csv (lmerTest 3.1-3's contest1D), each gene
## fitted as generate_batch.R fits it (lme4::lmer(y ~ condition + age + (1 | donor) + (1 | batch),
## REML = TRUE) on samples.csv with y = the gene's row, NaN samples dropped):
##   L = rbind(treat_plus_10_age = c(0, 1, 10), mean_treated_at_50 = c(1, 1, 50))
## (a) `weighted`: with dream's weights w / mean(w), Satterthwaite's df;
## (b) `unweighted`: without weights, Satterthwaite's and Kenward-Roger's df.
## The constant gene G005 is left out (lme4 returns optimizer noise for it).
## Usage (in this folder):  nice -n 19 Rscript generate_batch_contrasts.R
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
weights <- read.csv(file.path(dir, "weights.csv"), check.names = FALSE)
L <- rbind(treat_plus_10_age = c(0, 1, 10), mean_treated_at_50 = c(1, 1, 50))
tests <- function(m, ddf) {
  rows <- lapply(seq_len(nrow(L)), function(i) {
    r <- contest1D(as_lmerModLmerTest(m), L[i, ], ddf = ddf)
    list(contrast = rownames(L)[i], estimate = r$Estimate, se = r$`Std. Error`, df = r$df,
         t = r$`t value`, p = r$`Pr(>|t|)`)
  })
  rows
}
quiet <- function(expr) suppressWarnings(suppressMessages(expr))
genes <- list()
for (g in seq_len(nrow(expression))) {
  name <- expression$gene[g]
  if (name == "G005") next
  data <- samples
  data$y <- as.numeric(expression[g, -1])
  w <- as.numeric(weights[g, -1])
  data$w_scaled <- w / mean(w)
  data <- data[!is.na(data$y), ]
  weighted <- quiet(lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, weights = w_scaled, REML = TRUE))
  unweighted <- quiet(lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, REML = TRUE))
  genes[[length(genes) + 1]] <- list(
    gene = name,
    weighted = list(satterthwaite = tests(weighted, "Satterthwaite")),
    unweighted = list(satterthwaite = tests(unweighted, "Satterthwaite"),
                      kenward_roger = tests(unweighted, "Kenward-Roger")))
}
out <- list(
  what = "contest1D t-tests of L's rows per gene of batch/expression.csv (generate_batch_contrasts.R)",
  formula = "y ~ condition + age + (1 | donor) + (1 | batch)",
  coefficients = c("(Intercept)", "conditiontreat", "age"),
  L = lapply(seq_len(nrow(L)), function(i) list(name = rownames(L)[i], row = unname(L[i, ]))),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  genes = genes)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), null = "null", na = "null"),
           file.path(dir, "contrasts.json"))
