#!/usr/bin/env Rscript
## generate_kenward_roger.R -- Kenward-Roger references the shared fixtures lack, written to
## kenward_roger/<case>.json next to this script (see kenward_roger/README.md).
##
## 1. Prior weights. pbkrtest 0.5.2 builds Sigma = sum_i gamma_i G_i with G = I for sigma^2 (its
##    .get_SigmaG), i.e. it ignores lmer's prior weights although vcov(m) uses them: the shared
##    references for synth_weighted_lmm carry denominator df of about 2400 for 500 observations.
##    Here pbkrtest's own vcovAdj_internal() is run on the Sigma of the weighted model, with
##    G = diag(1/w) for sigma^2 (Var(y) = sigma^2 W^-1 + Z Lambda Lambda' Z' sigma^2); the tables
##    are then assembled exactly as lmerTest assembles them (contest1D: Lb_ddf and the adjusted
##    SE; anova: .KR_adjust, as KRmodcomp) and emmeans (SE from the adjusted vcov, df from Lb_ddf).
##    For an unweighted model this path reproduces lmerTest's own numbers (checked below).
## 2. synth_crossed_slopes_reml's KR coefficient table, which the shared generator skipped (> 60 s).
##
## Usage:  cd tests/reference && Rscript generate_kenward_roger.R
## Requires: lme4, lmerTest, pbkrtest, emmeans, jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(pbkrtest)
  library(emmeans)
  library(jsonlite)
})
lmer <- lme4::lmer
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
out_dir <- file.path(here, "kenward_roger")
dir.create(out_dir, showWarnings = FALSE)

read_case <- function(id) read_json(file.path(here, "cases", paste0(id, ".json")))
load_data <- function(meta) {
  raw <- read.csv(file.path(here, "data", paste0(meta$dataset, ".gz")), colClasses = "character",
                  check.names = FALSE)
  for (v in names(raw)) {
    type <- meta$columns[[v]]
    raw[[v]] <- switch(type,
      factor = factor(raw[[v]], levels = unlist(meta$factor_levels[[v]] %||% sort(unique(raw[[v]])))),
      numeric = as.numeric(raw[[v]]), integer = as.integer(raw[[v]]), raw[[v]])
  }
  raw
}
`%||%` <- function(a, b) if (is.null(a)) b else a
fit_reml <- function(meta, data) {
  env <- new.env(); env$data <- data
  cl <- call("lmer", formula = as.formula(meta$formula, env = env), data = quote(data), REML = TRUE)
  if (!is.null(meta$weights)) cl$weights <- as.name(meta$weights)
  eval(cl, env)
}

## pbkrtest's vcovAdj with Sigma's residual generator diag(1/w) (w = prior weights, 1 if none).
weighted_vcov_adj <- function(m) {
  sg <- pbkrtest:::get_SigmaG(m)
  w <- weights(m)
  sg$G[[sg$n.ggamma]] <- Diagonal(length(w), 1 / w)
  gamma <- c(unlist(lapply(VarCorr(m), function(v) v[lower.tri(v, diag = TRUE)])), sigma(m)^2)
  sg$Sigma <- Reduce(`+`, Map(`*`, gamma, sg$G))
  pbkrtest:::vcovAdj_internal(vcov(m), sg, getME(m, "X"))
}

coefficient_table <- function(m, phi_a) {
  beta <- fixef(m); p <- length(beta)
  rows <- lapply(seq_len(p), function(j) {
    L <- matrix(0, 1, p); L[j] <- 1
    df <- pbkrtest::Lb_ddf(L, vcov(m), phi_a)
    se <- sqrt(phi_a[j, j]); t <- beta[[j]] / se
    list(term = names(beta)[j], Estimate = beta[[j]], `Std. Error` = se, df = df, `t value` = t,
         `Pr(>|t|)` = 2 * pt(abs(t), df, lower.tail = FALSE))
  })
  rows
}

anova_table <- function(m, phi_a) {
  hyp <- attr(anova(as_lmerModLmerTest(m), type = 3, ddf = "Satterthwaite"), "hypotheses")
  lapply(names(hyp), function(term) {
    L <- as.matrix(hyp[[term]])
    x <- pbkrtest:::.KR_adjust(phi_a, vcov(m), L, fixef(m), 0)
    ms <- x$FstatU * sigma(m)^2   # lmerTest's mk_Ftable
    list(term = term, `Sum Sq` = ms * x$ndf, `Mean Sq` = ms, NumDF = x$ndf, DenDF = x$ddf,
         `F value` = x$Fstat, `Pr(>F)` = x$p.value, L = L)
  })
}

emmeans_tables <- function(m, phi_a, spec) {
  emm <- emmeans(m, spec, lmer.df = "asymptotic")
  pairs_emm <- pairs(emm, adjust = "none")
  one <- function(linfct, labels) {
    est <- drop(linfct %*% fixef(m))
    se <- sqrt(rowSums((linfct %*% phi_a) * linfct))
    df <- apply(linfct, 1, function(l) pbkrtest::Lb_ddf(l, vcov(m), phi_a))
    t <- est / se
    lapply(seq_along(est), function(i) list(label = labels[i], estimate = est[[i]], SE = se[[i]],
      df = df[[i]], t.ratio = t[[i]], p.value = 2 * pt(abs(t[[i]]), df[[i]], lower.tail = FALSE),
      lower.CL = est[[i]] - qt(0.975, df[[i]]) * se[[i]], upper.CL = est[[i]] + qt(0.975, df[[i]]) * se[[i]],
      linfct = linfct[i, ])) }
  list(spec = spec, emmeans = one(emm@linfct, as.character(summary(emm)[[1]])),
       pairs_none = one(pairs_emm@linfct, as.character(summary(pairs_emm)$contrast)))
}

write_case <- function(id, block) {
  block$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                         pbkrtest = as.character(packageVersion("pbkrtest")),
                         lmerTest = as.character(packageVersion("lmerTest")),
                         emmeans = as.character(packageVersion("emmeans")))
  writeLines(toJSON(block, auto_unbox = TRUE, digits = NA, pretty = TRUE),
             file.path(out_dir, paste0(id, ".json")))
}

## The weighted path reproduces pbkrtest/lmerTest on an unweighted model.
local({
  meta <- read_case("sleepstudy_reml"); m <- fit_reml(meta, load_data(meta))
  ours <- weighted_vcov_adj(m); theirs <- vcovAdj(m)
  stopifnot(max(abs(as.matrix(ours) - as.matrix(theirs))) < 1e-10 * max(abs(as.matrix(theirs))))
  a <- anova(as_lmerModLmerTest(m), type = 3, ddf = "Kenward-Roger")
  stopifnot(abs(anova_table(m, ours)[[1]]$DenDF - a$DenDF) < 1e-8 * a$DenDF)
})

for (id in c("synth_weighted_lmm", "synth_weighted_slopes_ml")) {
  meta <- read_case(id); data <- load_data(meta)
  m <- fit_reml(meta, data)
  phi_a <- weighted_vcov_adj(m)
  block <- list(case = id, formula = meta$formula, weights = meta$weights, REML = TRUE,
                refitted_with_REML = !isTRUE(meta$REML), fixef = as.list(fixef(m)),
                theta = unname(getME(m, "theta")), sigma = sigma(m),
                coefficients = coefficient_table(m, phi_a), anova_type3 = anova_table(m, phi_a),
                pbkrtest_ignoring_weights = list(df = sapply(seq_along(fixef(m)), function(j) {
                  L <- matrix(0, 1, length(fixef(m))); L[j] <- 1
                  pbkrtest::Lb_ddf(L, vcov(m), vcovAdj(m)) })))
  factors <- names(Filter(is.factor, data[all.vars(as.formula(meta$formula))[-1]]))
  fixed_factors <- intersect(factors, all.vars(nobars(as.formula(meta$formula))))
  if (length(fixed_factors)) block$emmeans <- emmeans_tables(m, phi_a, fixed_factors[1])
  write_case(id, block)
}

## synth_crossed_slopes_reml: lmerTest's own KR summary (pbkrtest takes about half a minute).
local({
  meta <- read_case("synth_crossed_slopes_reml"); m <- fit_reml(meta, load_data(meta))
  t0 <- proc.time()[["elapsed"]]
  co <- summary(as_lmerModLmerTest(m), ddf = "Kenward-Roger")$coefficients
  elapsed <- proc.time()[["elapsed"]] - t0
  write_case("synth_crossed_slopes_reml", list(case = "synth_crossed_slopes_reml", formula = meta$formula,
    REML = TRUE, fixef = as.list(fixef(m)), theta = unname(getME(m, "theta")), time_s = round(elapsed, 1),
    coefficients = lapply(seq_len(nrow(co)), function(i) c(list(term = rownames(co)[i]), as.list(co[i, ])))))
})
