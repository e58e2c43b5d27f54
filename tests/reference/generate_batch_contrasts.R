#!/usr/bin/env Rscript
## generate_batch_contrasts.R -- batch/contrasts.json: t-tests of two linear combinations of the
## fixed effects for every gene of batch/expression.csv (lmerTest 3.1-3's contest1D), each gene
## fitted as generate_batch.R fits it (batch_data.R: the model and the genes):
##   L = rbind(treat_plus_10_age = c(0, 1, 10), mean_treated_at_50 = c(1, 1, 50))
## (a) `weighted`: with dream's weights w / mean(w), Satterthwaite's df;
## (b) `unweighted`: without weights, Satterthwaite's and Kenward-Roger's df.
## Usage (in this folder):  nice -n 19 Rscript generate_batch_contrasts.R
script_dir <- local({ a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); if (length(f) == 1) dirname(normalizePath(f)) else getwd() })
source(file.path(script_dir, "batch_data.R"))
L <- rbind(treat_plus_10_age = c(0, 1, 10), mean_treated_at_50 = c(1, 1, 50))
tests <- function(m, ddf) {
  rows <- lapply(seq_len(nrow(L)), function(i) {
    r <- contest1D(as_lmerModLmerTest(m), L[i, ], ddf = ddf)
    list(contrast = rownames(L)[i], estimate = r$Estimate, se = r$`Std. Error`, df = r$df,
         t = r$`t value`, p = r$`Pr(>|t|)`)
  })
  rows
}
genes <- for_each_gene(function(name, data) {
  weighted <- quiet(lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, weights = w_scaled, REML = TRUE))
  unweighted <- quiet(lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, REML = TRUE))
  list(
    gene = name,
    weighted = list(satterthwaite = tests(weighted, "Satterthwaite")),
    unweighted = list(satterthwaite = tests(unweighted, "Satterthwaite"),
                      kenward_roger = tests(unweighted, "Kenward-Roger")))
})
write_batch_json("contrasts.json",
                 "contest1D t-tests of L's rows per gene of batch/expression.csv (generate_batch_contrasts.R)",
                 c("lme4", "lmerTest"), genes,
                 extra = list(coefficients = c("(Intercept)", "conditiontreat", "age"),
                              L = lapply(seq_len(nrow(L)), function(i) list(name = rownames(L)[i], row = unname(L[i, ])))))
