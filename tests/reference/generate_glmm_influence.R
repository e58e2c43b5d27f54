#!/usr/bin/env Rscript
## generate_glmm_influence.R -- exact case deletion for GLMMs by brute force: every deletion unit's
## glmer() refitted from scratch (lme4 defaults, no start values) on the data without it, with the
## influence measures of generate_diagnostics.R's lmer files (same definitions, similar layout).
##
## Models (data from data/ next to this script):
##   cbpp_herd        cbind(incidence, size - incidence) ~ period + (1 | herd), binomial; each herd
##                    deleted (15 refits), and each row (56 refits: `obs`)
##   grouseticks_location
##                    TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), poisson; each LOCATION deleted (63 refits)
##
## V and V_i are vcov(m, use.hessian = FALSE): the covariance from the fixed-effects block of the
## Cholesky factor (sigma^2 (R_X' R_X)^-1 with sigma = 1 for these families), which is what
## mixedmodels' influence() uses for GLMMs (cov_params(method = "factor")). lme4's default vcov()
## of a glmer fit is the inverse of a finite-difference Hessian of the deviance in (theta, beta)
## instead (use.hessian = TRUE); vcov_hessian keeps the full fit's for comparison.
## The criterion is lme4 1.1's Laplace approximation (mixedmodels' compat = "lme4").
##
## Writes glmm_influence.json next to this script.
## Usage: cd tests/reference && nice -n 19 Rscript generate_glmm_influence.R   (about 30 s)
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

## Shortest decimal string that round-trips to the same double (as generate_diagnostics.R),
## so the JSON holds R's doubles exactly; non-finite values become null.
round_trip <- function(x) {
  out <- rep("null", length(x))
  finite <- is.finite(x)
  out[finite] <- vapply(x[finite], function(v) {
    for (digits in 15:17) {
      s <- sprintf(paste0("%.", digits, "g"), v)
      if (as.numeric(s) == v) return(s)
    }
    s
  }, "")
  out
}
## Numbers pre-formatted as JSON text: a vector becomes an array, a matrix an array of rows.
num <- function(x) {
  if (is.matrix(x)) {
    rows <- vapply(seq_len(nrow(x)), function(i) paste0("[", paste(round_trip(x[i, ]), collapse = ","), "]"), "")
    return(structure(paste0("[", paste(rows, collapse = ","), "]"), class = "json"))
  }
  structure(paste0("[", paste(round_trip(as.numeric(x)), collapse = ","), "]"), class = "json")
}
scalar <- function(x) structure(round_trip(as.numeric(x)), class = "json")

capture <- function(expr) {
  w <- character(); msg <- character()
  value <- withCallingHandlers(expr,
    warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") },
    message = function(x) { msg <<- c(msg, conditionMessage(x)); invokeRestart("muffleMessage") })
  list(value = value, warnings = unique(c(w, trimws(msg))))
}

varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  names <- ifelse(is.na(vc$var2), paste(vc$grp, vc$var1, sep = "|"), paste(vc$grp, vc$var1, vc$var2, sep = "|"))
  setNames(vc$vcov, names)
}
## lme4 warns whenever the two covariances differ by more than 1e-4 (they do, by a few percent):
## the factor-based one is asked for on purpose, so that warning alone is muffled.
factor_vcov <- function(m) withCallingHandlers(unname(as.matrix(vcov(m, use.hessian = FALSE))),
  warning = function(w) if (grepl("computed from finite-difference Hessian", conditionMessage(w))) invokeRestart("muffleWarning"))
summary_of <- function(m) list(
  fixef = fixef(m), vcov = factor_vcov(m), theta = unname(getME(m, "theta")),
  varcorr = varcorr_rows(m), logLik = as.numeric(logLik(m)), isSingular = isSingular(m))

## Every unit (label -> rows kept) refitted from scratch, and the measures against the full fit.
brute_force <- function(fit_on, full, units) {
  p <- length(full$fixef)
  V_inverse <- solve(full$vcov)
  n <- length(units)
  k <- length(full$varcorr)
  out <- list(fixef = matrix(NA_real_, n, p), vcov = vector("list", n), theta = matrix(NA_real_, n, length(full$theta)),
              varcorr_vcov = matrix(NA_real_, n, k), logLik = rep(NA_real_, n), isSingular = logical(n),
              warnings = vector("list", n), cooks_d = rep(NA_real_, n), mdffits = rep(NA_real_, n),
              covtrace = rep(NA_real_, n), covratio = rep(NA_real_, n), rvc = matrix(NA_real_, n, k))
  for (i in seq_len(n)) {
    refit <- capture(fit_on(units[[i]]))
    s <- summary_of(refit$value)
    out$warnings[[i]] <- I(unique(c(refit$warnings, unlist(refit$value@optinfo$conv$lme4$messages))))
    stopifnot(identical(names(s$fixef), names(full$fixef)))
    d <- full$fixef - s$fixef
    out$fixef[i, ] <- s$fixef
    out$vcov[[i]] <- num(s$vcov)
    out$theta[i, ] <- s$theta
    out$varcorr_vcov[i, ] <- s$varcorr[names(full$varcorr)]
    out$logLik[i] <- s$logLik
    out$isSingular[i] <- s$isSingular
    out$cooks_d[i] <- drop(t(d) %*% V_inverse %*% d) / p
    out$mdffits[i] <- drop(t(d) %*% solve(s$vcov, d)) / p
    out$covtrace[i] <- abs(sum(diag(V_inverse %*% s$vcov)) - p)
    out$covratio[i] <- det(s$vcov) / det(full$vcov)
    relative <- s$varcorr[names(full$varcorr)] / full$varcorr - 1
    relative[full$varcorr == 0] <- NA
    out$rvc[i, ] <- relative
  }
  list(deleted = I(names(units)), n_rows_deleted = I(vapply(units, function(keep) sum(!keep), 1L, USE.NAMES = FALSE)),
       fixef = num(out$fixef), vcov = out$vcov, theta = num(out$theta), varcorr_vcov = num(out$varcorr_vcov),
       logLik = num(out$logLik), isSingular = I(out$isSingular), warnings = out$warnings,
       cooks_d = num(out$cooks_d), mdffits = num(out$mdffits), covtrace = num(out$covtrace),
       covratio = num(out$covratio), rvc = num(out$rvc))
}

model_block <- function(formula, data_file, data, family, grouping_factor, observations) {
  fit_on <- function(keep) glmer(as.formula(formula), data[keep, , drop = FALSE], family = family)
  m <- fit_on(rep(TRUE, nrow(data)))
  full <- summary_of(m)
  levels_in_order <- levels(droplevels(data[[grouping_factor]]))
  groups <- setNames(lapply(levels_in_order, function(l) data[[grouping_factor]] != l), levels_in_order)
  deletion <- list(groups = brute_force(fit_on, full, groups))
  if (observations) {
    rows <- setNames(lapply(seq_len(nrow(data)), function(i) seq_len(nrow(data)) != i), seq_len(nrow(data)))
    deletion$obs <- brute_force(fit_on, full, rows)
  }
  list(formula = formula, family = family, data = data_file, grouping_factor = grouping_factor,
       full_fit = list(fixef_names = I(names(full$fixef)), fixef = num(full$fixef), vcov = num(full$vcov),
                       vcov_hessian = num(unname(as.matrix(vcov(m)))), theta = num(full$theta),
                       varcorr_names = I(names(full$varcorr)), varcorr_vcov = num(full$varcorr),
                       logLik = scalar(full$logLik), isSingular = isSingular(m)),
       case_deletion = deletion)
}

t0 <- proc.time()[["elapsed"]]
cbpp <- read("cbpp.csv.gz", c("herd", "period"))
ticks <- read("grouseticks.csv.gz", c("INDEX", "BROOD", "YEAR", "LOCATION"))
out <- list(
  cbpp_herd = model_block("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp.csv.gz", cbpp,
                          "binomial", "herd", observations = TRUE),
  grouseticks_location = model_block("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", "grouseticks.csv.gz", ticks,
                                     "poisson", "LOCATION", observations = FALSE),
  definitions = list(
    b = "fixef of the full fit; b_i = fixef of the from-scratch glmer() refit without deletion unit i (lme4 defaults, no start values)",
    V = "vcov(m, use.hessian = FALSE) of the full fit (factor-based; vcov_hessian is lme4's default vcov(m)); V_i the same of the refit",
    p = "number of fixed-effect coefficients",
    cooks_d = "(b - b_i)' V^-1 (b - b_i) / p", mdffits = "(b - b_i)' V_i^-1 (b - b_i) / p",
    covtrace = "|trace(V^-1 V_i) - p|", covratio = "det(V_i) / det(V)",
    rvc = "for each row k of as.data.frame(VarCorr(m)): vcov_k(refit without i) / vcov_k(full fit) - 1; null where the full-fit value is 0",
    deleted = "groups: levels of grouping_factor in R's level order; obs: 1-based row numbers of the data file"),
  time_s = round(proc.time()[["elapsed"]] - t0, 1),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
write_json(out, file.path(here, "glmm_influence.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE,
           json_verbatim = TRUE, null = "null", na = "null")
invisible(read_json(file.path(here, "glmm_influence.json")))
