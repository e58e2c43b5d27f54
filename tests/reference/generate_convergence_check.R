#!/usr/bin/env Rscript
## generate_convergence_check.R -- lme4's post-fit convergence check (checkConv) on a handful of
## fits, written to convergence_check.json next to this script.
##
## lme4 1.1-31 computes, after the optimiser stops (optwrap, calc.derivs = TRUE by default for
## every model size), the central-difference gradient and Hessian of the objective at the
## optimiser's parameters (deriv12, step 1e-4): for lmer in theta (the profiled deviance or REML
## criterion), for glmer with nAGQ > 0 in c(theta, fixef) (the Laplace / AGQ deviance; nAGQ = 0
## computes none). checkConv then (1) returns early for a singular fit (a theta with lower bound 0
## below 1e-4); (2) warns "Model failed to converge with max|grad| = ..." when
## max(pmin(|solve(chol(H), g)|, |g|)) > 0.002, or "unable to evaluate scaled gradient" when
## chol(H) fails; (3) checks the eigenvalues of H (checkHess, tol 1e-6): negative ones, zero ones,
## max > 1e6 ("very large eigenvalue"), min/max < 1e-6 ("large eigenvalue ratio").
##
## Per fit: `formula`, `kind` (lmer / glmer), `REML`, `family`, `link`, `nAGQ`, `case` (the shared
## case whose data CSV and column types are used) and `derived` (columns added before fitting:
## `column` = `from` * `scale` + `shift`); lme4's `par` (m@optinfo$val: the parameters the
## derivatives are taken at, theta then fixef for glmer), `n_theta`, `lower` (the optimiser's
## lower bounds, m@lower: theta's), `objective` (the deviance function of the fit,
## getME(m, "devfun"), at `par`; glmer's PIRLS starts from the fit's modes), `gradient` and `hessian` (m@optinfo$derivs; null for
## nAGQ = 0), `scaled_gradient` (solve(chol(H), g); null where chol fails), `max_grad`
## (max(pmin(|scaled_gradient|, |gradient|))), `hessian_eigenvalues` (eigen(H)$values,
## decreasing), `conv_messages` (m@optinfo$conv$lme4$messages, in lme4's order), `warnings` (the
## warnings lmer/glmer raised) and `messages`, `theta`, `fixef`, `logLik`.
##
## Numbers are written with 17 significant digits (exact doubles): the check works on Hessians
## with eigenvalues 10 orders of magnitude apart.
##
## Usage:  cd tests/reference && Rscript generate_convergence_check.R
## Requires: lme4 (1.1-31), jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
`%||%` <- function(a, b) if (is.null(a)) b else a

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

specs <- list(
  list(id = "sleepstudy_reml", case = "sleepstudy_reml", kind = "lmer",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  list(id = "sleepstudy_ml", case = "sleepstudy_reml", kind = "lmer",
       formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  list(id = "penicillin_reml", case = "penicillin_reml", kind = "lmer",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = TRUE),
  list(id = "dyestuff2_reml_singular", case = "dyestuff2_reml", kind = "lmer",
       formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE),
  ## Badly scaled slopes: lme4's optimiser stops short and its check warns.
  list(id = "sleepstudy_days_x10", case = "sleepstudy_reml", kind = "lmer",
       formula = "Reaction ~ Ds + (Ds | Subject)", REML = TRUE,
       derived = list(list(column = "Ds", from = "Days", scale = 10, shift = 0))),
  list(id = "sleepstudy_days_x100", case = "sleepstudy_reml", kind = "lmer",
       formula = "Reaction ~ Ds + (Ds | Subject)", REML = TRUE,
       derived = list(list(column = "Ds", from = "Days", scale = 100, shift = 0))),
  list(id = "sleepstudy_days_plus200", case = "sleepstudy_reml", kind = "lmer",
       formula = "Reaction ~ Ds + (Ds | Subject)", REML = TRUE,
       derived = list(list(column = "Ds", from = "Days", scale = 1, shift = 200))),
  list(id = "cbpp_binomial", case = "cbpp_binomial", kind = "glmer",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "logit", nAGQ = 1),
  list(id = "cbpp_binomial_agq9", case = "cbpp_binomial", kind = "glmer",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "logit", nAGQ = 9),
  list(id = "cbpp_binomial_nagq0", case = "cbpp_binomial", kind = "glmer",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "logit", nAGQ = 0),
  list(id = "grouseticks_uncentred_height", case = "grouseticks_poisson", kind = "glmer",
       formula = "TICKS ~ YEAR + HEIGHT + (1 | BROOD)", family = "poisson", link = "log", nAGQ = 1),
  list(id = "cbpp_size_x1000", case = "cbpp_binomial", kind = "glmer",
       formula = "cbind(incidence, size - incidence) ~ period + hs + (1 | herd)",
       family = "binomial", link = "logit", nAGQ = 1,
       derived = list(list(column = "hs", from = "size", scale = 1000, shift = 0))),
  list(id = "synth_gamma_log", case = "synth_gamma_log", kind = "glmer",
       formula = "y ~ x + (1 | g)", family = "Gamma", link = "log", nAGQ = 1)
)

fit_one <- function(spec) {
  data <- load_data(read_case(spec$case))
  for (d in spec$derived) data[[d$column]] <- data[[d$from]] * d$scale + d$shift
  warns <- character(0); msgs <- character(0)
  m <- withCallingHandlers(
    if (spec$kind == "lmer") {
      lmer(as.formula(spec$formula), data = data, REML = spec$REML)
    } else {
      family <- get(spec$family)(link = spec$link)
      glmer(as.formula(spec$formula), data = data, family = family, nAGQ = spec$nAGQ)
    },
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(x) { msgs <<- c(msgs, trimws(conditionMessage(x))); invokeRestart("muffleMessage") })
  derivs <- m@optinfo$derivs
  scaled <- NULL; max_grad <- NULL; eigenvalues <- NULL
  if (!is.null(derivs)) {
    scaled <- tryCatch(as.vector(solve(chol(derivs$Hessian), derivs$gradient)), error = function(e) NULL)
    if (!is.null(scaled)) max_grad <- max(pmin(abs(scaled), abs(derivs$gradient)))
    eigenvalues <- eigen(derivs$Hessian, symmetric = TRUE, only.values = TRUE)$values
  }
  c(spec[setdiff(names(spec), "derived")],
    list(derived = spec$derived %||% list(),
         par = unname(m@optinfo$val), n_theta = length(getME(m, "theta")), lower = m@lower,
         objective = as.numeric(getME(m, "devfun")(m@optinfo$val)),
         gradient = if (is.null(derivs)) NULL else derivs$gradient,
         hessian = if (is.null(derivs)) NULL else derivs$Hessian,
         scaled_gradient = scaled, max_grad = max_grad, hessian_eigenvalues = eigenvalues,
         conv_messages = as.character(unlist(m@optinfo$conv$lme4$messages)),
         warnings = warns, messages = msgs,
         theta = unname(getME(m, "theta")), fixef = as.list(fixef(m)),
         logLik = as.numeric(logLik(m))))
}

fits <- lapply(specs, fit_one)
out <- list(
  generated_by = "generate_convergence_check.R",
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
  fits = fits)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), null = "null", pretty = TRUE),
           file.path(here, "convergence_check.json"))
