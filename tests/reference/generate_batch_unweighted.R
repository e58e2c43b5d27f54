#!/usr/bin/env Rscript
## generate_batch_unweighted.R -- batch/results_unweighted.json: the genes of batch/expression.csv
## fitted WITHOUT weights, each as lme4 + lmerTest fit it (batch_data.R: the model and the genes),
## lme4 defaults; Satterthwaite tests from summary(lmerTest::as_lmerModLmerTest(m), ddf = "Satterthwaite").
## Usage (in this folder):  nice -n 19 Rscript generate_batch_unweighted.R
script_dir <- local({ a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); if (length(f) == 1) dirname(normalizePath(f)) else getwd() })
source(file.path(script_dir, "batch_data.R"))
genes <- for_each_gene(function(name, data) {
  warnings <- character(0)
  m <- withCallingHandlers(
    lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, REML = TRUE),
    warning = function(w) { warnings <<- c(warnings, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) invokeRestart("muffleMessage"))
  s <- summary(as_lmerModLmerTest(m), ddf = "Satterthwaite")$coefficients
  list(
    gene = name, n_used = nrow(data),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    sigma = sigma(m), logLik = as.numeric(logLik(m)), isSingular = isSingular(m),
    satterthwaite = list(df = as.list(s[, "df"]), t = as.list(s[, "t value"]), p = as.list(s[, "Pr(>|t|)"])),
    warnings = warnings)
})
write_batch_json("results_unweighted.json",
                 "per-gene lme4 REML fits of batch/expression.csv without weights (generate_batch_unweighted.R)",
                 c("lme4", "lmerTest"), genes)
