#!/usr/bin/env Rscript
## generate_batch_kenward_roger.R -- batch/kenward_roger.json: Kenward-Roger t-tests of every
## coefficient for the genes of batch/expression.csv, each gene fitted as generate_batch.R fits it
## (batch_data.R: the model and the genes), lme4 defaults,
## (a) `weighted`: with dream's weights w / mean(w). pbkrtest
##     0.5.2 ignores lmer's prior weights (see generate_kenward_roger.R), so, as there, pbkrtest's
##     own vcovAdj_internal() runs on the Sigma of the weighted model (G = diag(1/w) for sigma^2)
##     and each coefficient's test is assembled as lmerTest's contest1D does (Lb_ddf, adjusted SE);
## (b) `unweighted`: without weights, summary(lmerTest::as_lmerModLmerTest(m), ddf = "Kenward-Roger").
## Genes whose KR computation fails in R carry `error`.
## Usage (in this folder):  nice -n 19 Rscript generate_batch_kenward_roger.R
script_dir <- local({ a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); if (length(f) == 1) dirname(normalizePath(f)) else getwd() })
source(file.path(script_dir, "batch_data.R"))
suppressPackageStartupMessages(library(pbkrtest))

weighted_vcov_adj <- function(m) {
  sg <- pbkrtest:::get_SigmaG(m)
  w <- weights(m)
  sg$G[[sg$n.ggamma]] <- Diagonal(length(w), 1 / w)
  gamma <- c(unlist(lapply(VarCorr(m), function(v) v[lower.tri(v, diag = TRUE)])), sigma(m)^2)
  sg$Sigma <- Reduce(`+`, Map(`*`, gamma, sg$G))
  pbkrtest:::vcovAdj_internal(vcov(m), sg, getME(m, "X"))
}
weighted_tests <- function(m) {
  phi_a <- weighted_vcov_adj(m)  # keeps the P and W attributes Lb_ddf reads
  beta <- fixef(m); p <- length(beta)
  df <- sapply(seq_len(p), function(j) { L <- matrix(0, 1, p); L[j] <- 1; pbkrtest::Lb_ddf(L, vcov(m), phi_a) })
  se <- sqrt(diag(as.matrix(phi_a))); t <- beta / se
  list(se = as.list(setNames(se, names(beta))), df = as.list(setNames(df, names(beta))),
       t = as.list(t), p = as.list(setNames(2 * pt(abs(t), df, lower.tail = FALSE), names(beta))))
}
unweighted_tests <- function(m) {
  s <- summary(as_lmerModLmerTest(m), ddf = "Kenward-Roger")$coefficients
  list(se = as.list(s[, "Std. Error"]), df = as.list(s[, "df"]), t = as.list(s[, "t value"]),
       p = as.list(s[, "Pr(>|t|)"]))
}
attempt <- function(expr) tryCatch(expr, error = function(e) list(error = conditionMessage(e)))
genes <- for_each_gene(function(name, data) {
  weighted <- quiet(lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, weights = w_scaled, REML = TRUE))
  unweighted <- quiet(lmer(y ~ condition + age + (1 | donor) + (1 | batch), data = data, REML = TRUE))
  list(
    gene = name, n_used = nrow(data),
    weighted = c(list(fixef = as.list(fixef(weighted)), REMLcrit = REMLcrit(weighted)), attempt(weighted_tests(weighted))),
    unweighted = c(list(fixef = as.list(fixef(unweighted)), REMLcrit = REMLcrit(unweighted)), attempt(unweighted_tests(unweighted))))
})
write_batch_json("kenward_roger.json",
                 "Kenward-Roger t-tests per gene of batch/expression.csv, with dream's weights (pbkrtest's vcovAdj_internal on the weighted Sigma) and without weights (lmerTest); see generate_batch_kenward_roger.R",
                 c("lme4", "lmerTest", "pbkrtest"), genes)
