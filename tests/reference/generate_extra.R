#!/usr/bin/env Rscript
## generate_extra.R -- EXTRA lme4 reference cases for the mixedmodels test suite.
## Writes NEW cases/<id>.json and data/<dataset>.csv.gz next to this script (tests/reference/),
## leaving the existing (shared) cases and datasets untouched, plus EXTRA.md describing them.
## Usage:  cd tests/reference && Rscript generate_extra.R
## Requires: lme4, lmerTest, pbkrtest, jsonlite (performance optional: r2_nakagawa / icc), gzip on PATH.
## Runtime: a couple of minutes (single core; profile/KR steps run in a forked child with time limits).
## ---------------------------------------------------------------------------
## Helper code: taken from the project's shared generate.R (same JSON schema and conventions);
## the changes are marked "EXTRA:" (family given as an R expression, glmer.nb fits, extra JSON
## fields, gzip-compressed CSV output, reuse of an already shipped dataset).
## ---------------------------------------------------------------------------
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")   # only as_lmerModLmerTest() is used; fits use lme4::lmer
  library(pbkrtest)
  library(parallel)
})
lmer <- lme4::lmer
HAVE_PERF <- requireNamespace("performance", quietly = TRUE)

## Location of this script (fixtures are written next to it)
get_script_dir <- function() {
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 1) return(dirname(normalizePath(f)))
  if (!is.null(sys.frames()[[1]]$ofile)) return(dirname(normalizePath(sys.frames()[[1]]$ofile)))
  getwd()
}

VERS <- list(
  lme4 = packageDescription("lme4")$Version,
  R = paste0(R.version$major, ".", R.version$minor),
  R_string = R.version.string,
  Matrix = packageDescription("Matrix")$Version,
  lmerTest = packageDescription("lmerTest")$Version,
  pbkrtest = packageDescription("pbkrtest")$Version,
  performance = if (HAVE_PERF) packageDescription("performance")$Version else NA
)

## ---- number formatting: shortest decimal string that round-trips to the same double
## (the round-trip test parses with jsonlite, i.e. the C library's correctly rounded strtod;
##  R's own as.numeric() is not correctly rounded for some 15-17 digit strings)
parse_dbl <- function(s) as.numeric(jsonlite::parse_json(paste0("[", paste(s, collapse = ","), "]"),
                                                         simplifyVector = TRUE))
fmt_num <- function(x) {
  out <- rep(NA_character_, length(x))
  fin <- is.finite(x)
  if (!any(fin)) return(out)
  xf <- x[fin]
  o <- sprintf("%.15g", xf)
  bad <- parse_dbl(o) != xf
  if (any(bad)) {
    o16 <- sprintf("%.16g", xf[bad])
    b16 <- parse_dbl(o16) != xf[bad]
    o16[b16] <- sprintf("%.17g", xf[bad][b16])
    o[bad] <- o16
  }
  out[fin] <- o
  out
}

## ---- minimal JSON writer (full double precision, NA/NaN/Inf -> null)
## conventions: unnamed list -> array, named list -> object,
## atomic length-1 (unnamed) -> scalar, atomic length != 1 -> array, named atomic -> object
json_str <- function(s) as.character(jsonlite::toJSON(enc2utf8(as.character(s)), auto_unbox = TRUE))
json_scalar <- function(v) {
  if (is.null(v) || length(v) == 0) return("null")
  if (is.na(v)) return("null")
  if (is.logical(v)) return(if (v) "true" else "false")
  if (is.integer(v)) return(as.character(v))
  if (is.numeric(v)) { if (!is.finite(v)) return("null"); return(fmt_num(v)) }
  if (is.factor(v)) return(json_str(as.character(v)))
  json_str(v)
}
is_scalar_like <- function(x) is.null(x) || (is.atomic(x) && length(x) == 1 && is.null(names(x)))
to_json <- function(x, indent = 0) {
  pad <- strrep("  ", indent); pad1 <- strrep("  ", indent + 1)
  if (is.null(x)) return("null")
  if (is.factor(x)) x <- as.character(x)
  if (is.atomic(x)) {
    if (is.matrix(x)) x <- lapply(seq_len(nrow(x)), function(i) as.list(unname(x[i, ])))
    else if (!is.null(names(x))) x <- as.list(x)
    else if (length(x) == 1) return(json_scalar(x))
    else return(paste0("[", paste(vapply(x, json_scalar, ""), collapse = ", "), "]"))
  }
  if (is.data.frame(x)) x <- as.list(x)
  if (!is.list(x)) stop("to_json: unsupported type ", class(x)[1])
  if (length(x) == 0) return(if (!is.null(names(x))) "{}" else "[]")
  nm <- names(x)
  if (is.null(nm)) {
    if (all(vapply(x, is_scalar_like, TRUE)))
      return(paste0("[", paste(vapply(x, json_scalar, ""), collapse = ", "), "]"))
    items <- vapply(x, to_json, "", indent = indent + 1)
    return(paste0("[\n", paste0(pad1, items, collapse = ",\n"), "\n", pad, "]"))
  }
  ## objects whose values are all scalars are written on one line when short
  vals <- vapply(x, to_json, "", indent = indent + 1)
  kv <- paste0(vapply(nm, json_str, ""), ": ", vals)
  one <- paste0("{", paste(kv, collapse = ", "), "}")
  if (all(vapply(x, is_scalar_like, TRUE)) && nchar(one) < 160) return(one)
  paste0("{\n", paste0(pad1, kv, collapse = ",\n"), "\n", pad, "}")
}
write_json_file <- function(x, path) writeLines(to_json(x), path, useBytes = TRUE)

nz <- function(x) if (length(x) == 0) NULL else x
num_or_null <- function(x) if (is.null(x) || length(x) == 0 || !is.finite(x)) NULL else unname(x)
named_list <- function(v) { v <- as.list(v); v }       # named numeric -> object
coefcol <- function(co, col) setNames(as.list(unname(co[, col])), rownames(co))   # one column of a coef table -> object
arr <- function(v) as.list(unname(v))                  # numeric -> JSON array (even if length 1)

## ---- datasets ---------------------------------------------------------------
DATASETS <- new.env()
col_type <- function(v) {
  if (is.ordered(v)) "ordered"
  else if (is.factor(v)) "factor"
  else if (is.integer(v)) "integer"
  else if (is.numeric(v)) "numeric"
  else if (is.logical(v)) "logical"
  else if (is.character(v)) "character"
  else class(v)[1]
}
## EXTRA: the CSV is gzip-compressed (gzip -9 -n, so reruns give identical bytes) into
## data/<name>.csv.gz.  shipped = TRUE: the dataset is already in data/ (a copy of a shared
## dataset); it is not rewritten, only checked to be byte-identical to what would be written.
register_dataset <- function(name, d, description = "", shipped = FALSE) {
  d <- as.data.frame(d)
  rownames(d) <- NULL
  if (any(vapply(d, is.ordered, TRUE))) stop("ordered factor left in dataset ", name)
  out <- d
  qcols <- integer()
  for (j in seq_along(d)) {
    v <- d[[j]]
    if (is.factor(v) || is.character(v)) { out[[j]] <- as.character(v); qcols <- c(qcols, j) }
    else if (is.integer(v)) out[[j]] <- as.character(v)
    else if (is.logical(v)) out[[j]] <- ifelse(v, "TRUE", "FALSE")
    else if (is.numeric(v)) out[[j]] <- fmt_num(v)
    else stop("unsupported column type in ", name, ": ", names(d)[j])
  }
  gz <- file.path(OUT, "data", paste0(name, ".csv.gz"))
  path <- if (shipped) tempfile(fileext = ".csv") else file.path(OUT, "data", paste0(name, ".csv"))
  write.csv(out, path, row.names = FALSE, quote = if (length(qcols)) qcols else FALSE, na = "")
  ## read back and check that the file reproduces the data exactly
  back <- read.csv(path, colClasses = "character", na.strings = character(), check.names = FALSE)
  stopifnot(identical(names(back), names(d)), nrow(back) == nrow(d))
  for (j in seq_along(d)) {
    v <- d[[j]]; b <- back[[j]]
    ok <- if (is.factor(v) || is.character(v)) identical(as.character(v), b)
          else if (is.numeric(v)) { bb <- rep(NA_real_, length(b)); bb[b != ""] <- parse_dbl(b[b != ""]); identical(bb, as.numeric(v)) }
          else TRUE
    if (!ok) stop("CSV round trip failed for ", name, "$", names(d)[j])
  }
  if (shipped) {
    have <- system2("gzip", c("-dc", shQuote(gz)), stdout = TRUE)
    if (!identical(have, readLines(path))) stop("shipped dataset ", gz, " differs from ", name, " as generated")
    unlink(path)
  } else {
    st <- system2("gzip", c("-9", "-n", "-f", shQuote(path)))
    if (st != 0 || !file.exists(gz)) stop("gzip failed for ", path)
  }
  assign(name, list(name = name, data = d, file = paste0(name, ".csv"),
                    description = description), envir = DATASETS)
  invisible(d)
}

## ---- run something in a forked child with a wall-clock limit -----------------
with_timeout <- function(fun, timeout) {
  t0 <- proc.time()[["elapsed"]]
  job <- mcparallel(fun(), silent = TRUE)
  res <- mccollect(job, wait = FALSE, timeout = timeout)
  el <- proc.time()[["elapsed"]] - t0
  if (is.null(res)) {
    tools::pskill(job$pid, tools::SIGKILL)
    suppressWarnings(try(mccollect(job, wait = TRUE), silent = TRUE))
    return(list(ok = FALSE, timeout = TRUE, elapsed = el, value = NULL, error = NULL))
  }
  v <- res[[1]]
  if (inherits(v, "try-error")) return(list(ok = FALSE, timeout = FALSE, elapsed = el, value = NULL,
                                            error = as.character(attr(v, "condition")$message %||% v)))
  list(ok = TRUE, timeout = FALSE, elapsed = el, value = v, error = NULL)
}
`%||%` <- function(a, b) if (is.null(a)) b else a

## capture warnings and messages
capture <- function(expr) {
  w <- character(); msg <- character()
  val <- withCallingHandlers(expr,
    warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") },
    message = function(x) { msg <<- c(msg, conditionMessage(x)); invokeRestart("muffleMessage") })
  list(value = val, warnings = unique(w), messages = unique(trimws(msg)))
}

## ---- random-effect extraction -------------------------------------------------
MAX_LEVELS <- 2000; KEEP_LEVELS <- 200
ranef_json <- function(re, cond = FALSE) {
  out <- list(); trunc <- list()
  for (g in names(re)) {
    df <- re[[g]]
    levs <- rownames(df); n <- length(levs); terms <- colnames(df)
    idx <- if (n > MAX_LEVELS) seq_len(KEEP_LEVELS) else seq_len(n)
    if (n > MAX_LEVELS) trunc[[g]] <- list(n_levels = n, kept_first = KEEP_LEVELS)
    if (cond) {
      pv <- attr(df, "postVar")
      if (is.null(pv)) return(NULL)
      pvl <- if (is.list(pv)) pv else list(pv)
      sds <- do.call(cbind, lapply(pvl, function(a) {
        q <- dim(a)[1]
        matrix(vapply(seq_len(q), function(j) sqrt(a[j, j, ]), numeric(dim(a)[3])), ncol = q)
      }))
      stopifnot(ncol(sds) == length(terms), nrow(sds) == n)
      vals <- sds
    } else vals <- as.matrix(df)
    g_out <- list()
    for (i in idx) {
      g_out[[levs[i]]] <- setNames(as.list(unname(vals[i, ])), terms)
    }
    out[[g]] <- g_out
  }
  list(values = out, truncated = trunc)
}

## ---- newdata for prediction -----------------------------------------------------
grouping_vars <- function(fml) {
  bars <- lme4::findbars(fml)
  gv <- unique(unlist(lapply(bars, function(b) all.vars(b[[3]]))))
  fixed_vars <- all.vars(lme4::nobars(fml))
  setdiff(gv, fixed_vars)
}
make_newdata <- function(d, fml, extra_cols = character()) {
  vars <- unique(c(intersect(names(d), all.vars(fml)), extra_cols))
  n <- nrow(d)
  idx <- unique(c(1L, n %/% 2L, n))
  nd <- d[idx, vars, drop = FALSE]
  gv <- grouping_vars(fml)
  setnew <- function(row, vs) {
    for (v in vs) {
      if (is.factor(row[[v]])) {
        levels(row[[v]]) <- c(levels(row[[v]]), "NEW_LEVEL"); row[[v]][] <- "NEW_LEVEL"
      } else if (is.numeric(row[[v]])) row[[v]][] <- max(d[[v]]) + 1000L
      else row[[v]][] <- "NEW_LEVEL"
    }
    row
  }
  newrows <- list(setnew(d[min(2L, n), vars, drop = FALSE], gv))
  if (length(gv) >= 2) newrows[[2]] <- setnew(d[min(3L, n), vars, drop = FALSE], gv[1])
  for (v in vars) if (is.factor(nd[[v]]) && v %in% gv) levels(nd[[v]]) <- c(levels(nd[[v]]), "NEW_LEVEL")
  nd <- do.call(rbind, c(list(nd), newrows))
  rownames(nd) <- NULL
  list(nd = nd, grouping_vars = gv, new_level_rows = seq(length(idx) + 1, nrow(nd)))
}
rows_json <- function(nd) lapply(seq_len(nrow(nd)), function(i) {
  r <- lapply(nd[i, , drop = FALSE], function(v) if (is.factor(v)) as.character(v) else unname(v))
  r
})

## ---- the case runner ---------------------------------------------------------------
CASES <- list(); MODELS <- list()

run_case <- function(id, dataset, formula, kind = c("lmer", "glmer"), family = NULL,
                     REML = TRUE, weights = NULL, offset = NULL, nAGQ = NULL,
                     notes = "", exercises = "", profile = TRUE, kr = TRUE,
                     condvar = TRUE, predict = TRUE, satt_timeout = 180,
                     nb = FALSE, nb_details = FALSE, extra = list()) {
  ## EXTRA: `family` is R code for the family (e.g. "binomial(link = \"probit\")"); nb = TRUE
  ## fits with glmer.nb() (no family); `extra` = additional top-level JSON fields (written
  ## right after `formula`, e.g. formula_python). nb_details = TRUE (with nb = TRUE) also records
  ## glmer.nb's starting theta (nb_theta_start), the number of theta refits (nb_nevals) and the
  ## optimize() settings. nAGQ = 0 fits get a note and the nAGQ0_check field (see EXTRA.md).
  kind <- match.arg(kind)
  cat(sprintf("[%s] %s ... ", format(Sys.time(), "%H:%M:%S"), id)); flush.console()
  ds <- get(dataset, envir = DATASETS)
  data <- ds$data
  fml <- as.formula(formula, env = environment())
  if (kind == "lmer") {
    cl <- call("lmer", formula = fml, data = quote(data), REML = REML)
  } else {
    cl <- if (nb) call("glmer.nb", formula = fml, data = quote(data))
          else call("glmer", formula = fml, data = quote(data), family = str2lang(family))
    if (!is.null(nAGQ)) cl$nAGQ <- as.integer(nAGQ)
  }
  if (!is.null(weights)) cl$weights <- as.name(weights)
  if (!is.null(offset)) cl$offset <- as.name(offset)
  t0 <- proc.time()[["elapsed"]]
  fit <- capture(eval(cl))
  fit_time <- proc.time()[["elapsed"]] - t0
  m <- fit$value
  conv_msgs <- unlist(m@optinfo$conv$lme4$messages)
  fit_warn <- fit$warnings
  glmm <- kind == "glmer"
  fam <- if (glmm) family(m) else NULL

  ## core quantities (capture any extraction warnings)
  ext <- capture({
    V <- as.matrix(vcov(m))
    list(V = V,
         re = ranef(m),
         re_cv = if (condvar) ranef(m, condVar = TRUE) else NULL)
  })
  V <- ext$value$V
  fe <- fixef(m)
  vc <- as.data.frame(VarCorr(m))
  varcorr <- lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
  ll <- logLik(m)
  re_j <- ranef_json(ext$value$re)
  cv_t0 <- proc.time()[["elapsed"]]
  re_cv <- if (condvar) ranef_json(ext$value$re_cv, cond = TRUE) else NULL

  used_vars <- intersect(names(data), unique(c(all.vars(fml), weights, offset)))
  factor_levels <- list()
  for (v in used_vars) if (is.factor(data[[v]])) factor_levels[[v]] <- arr(levels(data[[v]]))
  columns <- lapply(data, col_type)

  res <- c(list(
    case = id, dataset = ds$file, formula = formula), extra, list(kind = kind,
    family = if (glmm) fam$family else NULL,
    link = if (glmm) fam$link else NULL,
    REML = if (glmm) FALSE else REML,
    weights = weights, offset = offset,
    nAGQ = if (glmm) as.integer(if (is.null(nAGQ)) 1L else nAGQ) else NULL,
    notes = NULL,
    exercises = exercises,
    lme4_version = VERS$lme4, R_version = VERS$R,
    columns = columns, factor_levels = if (length(factor_levels)) factor_levels else structure(list(), names = character()),
    nobs = nobs(m), ngrps = as.list(ngrps(m)),
    optimizer = m@optinfo$optimizer,
    fit_time_s = round(fit_time, 3),
    fixef = named_list(fe),
    fixef_se = named_list(setNames(sqrt(diag(V)), names(fe))),
    vcov = V,
    vcov_names = names(fe),
    theta = arr(getME(m, "theta")),
    theta_names = arr(names(getME(m, "theta"))),
    ## EXTRA: also null for the negative binomial (no scale parameter; lme4's sigma() is 1)
    sigma = if (!glmm || !(fam$family %in% c("binomial", "poisson") || nb)) sigma(m) else NULL,
    varcorr = varcorr,
    logLik = as.numeric(ll), df = as.integer(attr(ll, "df")),
    deviance = NULL, REMLcrit = NULL, deviance_REML_FALSE = NULL,
    AIC = AIC(m), BIC = BIC(m),
    isSingular = isSingular(m),
    ranef = re_j$values,
    ranef_truncated = if (length(re_j$truncated)) re_j$truncated else NULL,
    ranef_condsd = if (!is.null(re_cv)) re_cv$values else NULL,
    fitted_head = arr(head(fitted(m), 20)),
    resid_head = arr(head(residuals(m, type = "response"), 20))
  ))
  if (nb) res$nb_theta <- unname(getME(m, "glmer.nb.theta"))   # EXTRA
  if (nb && nb_details) {   # EXTRA: how glmer.nb got there (lme4 R/nbinom.R)
    ## glmer.nb's start: the Poisson glmer fit of the same call, then est_theta() = MASS::theta.ml(y, fitted)
    ## with glmer.nb's defaults initCtrl = list(limit = 20, eps = 2 * tol), tol = 5e-5
    nb_tol <- formals(lme4::glmer.nb)$tol
    g0 <- capture(eval(call("glmer", formula = fml, data = quote(data), family = quote(stats::poisson), verbose = FALSE)))
    th0 <- capture(lme4:::est_theta(g0$value, limit = 20, eps = 2 * nb_tol, trace = FALSE))
    res$nb_theta_start <- as.numeric(th0$value)
    res$nb_theta_start_poisson_logLik <- as.numeric(logLik(g0$value))
    res$nb_theta_optimize_minimum <- as.numeric(m@call$family[["theta"]])   # exp(optimize()$minimum), put into the call by optTheta
    res$nb_nevals <- if (is.null(attr(m, "nevals"))) NULL else as.integer(attr(m, "nevals"))
    res$nb_optimize <- list(parameter = "log(theta)", interval = arr(log(res$nb_theta_start) + c(-3, 3)), tol = nb_tol)
    w0 <- unique(c(g0$warnings, th0$warnings, unlist(g0$value@optinfo$conv$lme4$messages)))
    if (length(w0)) res$nb_theta_start_warnings <- as.list(w0)
  }
  if (!glmm && REML) {
    res$deviance <- suppressWarnings(deviance(m))   # lme4: for REML fits deviance() == REMLcrit (deprecated path)
    res$REMLcrit <- REMLcrit(m)
    res$deviance_REML_FALSE <- deviance(m, REML = FALSE)
  } else {
    res$deviance <- deviance(m)
    res$REMLcrit <- NULL; res$deviance_REML_FALSE <- NULL
  }
  if (glmm) {
    res$minus2logLik <- -2 * as.numeric(ll)
    vn <- capture(as.matrix(vcov(m, use.hessian = FALSE)))
    Vn <- vn$value
    if (length(vn$warnings)) ext$warnings <- c(ext$warnings, paste("vcov(use.hessian = FALSE):", gsub("\n", " ", vn$warnings)))
    res$vcov_no_hessian <- Vn
    res$fixef_se_no_hessian <- named_list(setNames(sqrt(diag(Vn)), names(fe)))
  }
  if (glmm && !is.null(nAGQ) && nAGQ > 1) {
    yy <- getME(m, "y"); pw <- weights(m)
    ll_sat <- if (fam$family == "binomial") sum(dbinom(round(yy * pw), round(pw), yy, log = TRUE))
              else if (fam$family == "poisson") sum(dpois(yy, yy, log = TRUE)) else NA
    res$logLik_saturated <- ll_sat
    res$logLik_plus_saturated <- as.numeric(ll) + ll_sat
    notes <- c(notes, sprintf(paste0("nAGQ > 1: lme4 %s reports logLik/deviance/AIC/BIC for adaptive Gauss-Hermite fits relative to the ",
      "saturated model (its AGQ objective is built from deviance residuals), i.e. logLik here = l_AGQ - l_saturated, ",
      "so it is NOT on the same scale as the Laplace (nAGQ = 1) logLik unless l_saturated = 0 (Bernoulli data). ",
      "logLik_saturated = %s; logLik_plus_saturated = %s is the value comparable with a Laplace logLik."),
      VERS$lme4, format(ll_sat, digits = 10), format(as.numeric(ll) + ll_sat, digits = 10)))
  }

  extra_notes <- character()

  ## EXTRA: nAGQ = 0 (stage 1 only): which objective the reported logLik is
  if (glmm && !is.null(nAGQ) && nAGQ == 0) {
    c0 <- cl; c0$devFunOnly <- TRUE
    c1 <- cl; c1$nAGQ <- 1L; c1$devFunOnly <- TRUE
    d0 <- suppressMessages(eval(c0)); d1 <- suppressMessages(eval(c1))
    th <- unname(getME(m, "theta"))
    chk <- list(minus2logLik = -2 * as.numeric(ll),
                nAGQ0_devfun_at_theta = d0(th),
                laplace_devfun_at_theta_fixef = d1(c(th, unname(fe))))
    res$nAGQ0_check <- chk
    notes <- c(notes, sprintf(paste0("nAGQ = 0: lme4 optimizes theta only (stage 1, optimizer %s); at each theta the fixed effects ",
      "are estimated jointly with the conditional modes in the penalized IRLS, and there is no Laplace stage 2. ",
      "logLik = -deviance/2 of that nAGQ = 0 objective at theta (nAGQ0_check$nAGQ0_devfun_at_theta = %s); ",
      "lme4's nAGQ = 1 Laplace deviance function at c(theta, fixef) gives %s (nAGQ0_check$laplace_devfun_at_theta_fixef). ",
      "No finite-difference Hessian exists for nAGQ = 0 fits (optinfo$derivs is NULL, so there is no gradient/Hessian convergence check): ",
      "vcov/fixef_se are vcov(m) as lme4 gives them, which here come from the RX factor (the beta block of the PWRSS system at the estimates), ",
      "%s vcov_no_hessian/fixef_se_no_hessian."),
      m@optinfo$optimizer, format(chk$nAGQ0_devfun_at_theta, digits = 15), format(chk$laplace_devfun_at_theta_fixef, digits = 15),
      if (identical(res$vcov, res$vcov_no_hessian)) "identical to" else "NOT identical to"))
  }

  ## prediction on new data
  if (predict) {
    pn <- make_newdata(data, fml, extra_cols = c(offset))
    nd <- pn$nd
    pr <- capture(list(
      fixed = predict(m, newdata = nd, re.form = NA),
      cond = predict(m, newdata = nd, allow.new.levels = TRUE),
      fixed_r = if (glmm) predict(m, newdata = nd, re.form = NA, type = "response") else NULL,
      cond_r = if (glmm) predict(m, newdata = nd, allow.new.levels = TRUE, type = "response") else NULL))
    pnd <- list(rows = rows_json(nd),
                new_level_rows_1based = arr(pn$new_level_rows),
                grouping_vars_set_to_new = arr(pn$grouping_vars),
                type = "link",
                re_form_NA = arr(pr$value$fixed),
                conditional = arr(pr$value$cond))
    if (glmm) {
      pnd$re_form_NA_response <- arr(pr$value$fixed_r)
      pnd$conditional_response <- arr(pr$value$cond_r)
    }
    if (!is.null(offset)) {
      pnd$offset_note <- paste0("offset was passed via the offset= argument; lme4 ", VERS$lme4,
        " predict(newdata=) ignores such an offset, so re_form_NA/conditional EXCLUDE it ",
        "(fitted values include it). *_plus_offset add the '", offset, "' column of the rows.")
      pnd$re_form_NA_plus_offset <- arr(pr$value$fixed + nd[[offset]])
      pnd$conditional_plus_offset <- arr(pr$value$cond + nd[[offset]])
    }
    if (length(pr$warnings)) pnd$warnings <- pr$warnings
    res$predict_newdata <- pnd
  }

  ## lmerTest Satterthwaite / Kenward-Roger (lmer only)
  if (!glmm) {
    st <- with_timeout(function() {
      mt <- lmerTest::as_lmerModLmerTest(m)
      co <- summary(mt, ddf = "Satterthwaite")$coefficients
      co
    }, satt_timeout)
    if (st$ok) {
      co <- st$value
      res$satterthwaite <- list(df = coefcol(co, "df"), t = coefcol(co, "t value"),
                                p = coefcol(co, "Pr(>|t|)"), se = coefcol(co, "Std. Error"),
                                time_s = round(st$elapsed, 2))
    } else extra_notes <- c(extra_notes, sprintf("Satterthwaite not computed (%s).",
                              if (st$timeout) paste0("> ", satt_timeout, " s") else st$error))
    if (REML && kr) {
      krr <- with_timeout(function() {
        mt <- lmerTest::as_lmerModLmerTest(m)
        summary(mt, ddf = "Kenward-Roger")$coefficients
      }, 60)
      if (krr$ok) {
        co <- krr$value
        res$kenward_roger <- list(df = coefcol(co, "df"), t = coefcol(co, "t value"),
                                  p = coefcol(co, "Pr(>|t|)"), se = coefcol(co, "Std. Error"),
                                  time_s = round(krr$elapsed, 2))
      } else extra_notes <- c(extra_notes, sprintf("Kenward-Roger not computed (%s).",
                                if (krr$timeout) "did not finish within 60 s" else krr$error))
    }
  }

  ## performance: Nakagawa R2 and ICC
  if (HAVE_PERF) {
    r2 <- tryCatch(capture(performance::r2_nakagawa(m)), error = function(e) e)
    if (!inherits(r2, "error") && is.list(r2$value)) {
      res$r2_nakagawa <- list(marginal = num_or_null(unname(r2$value$R2_marginal)),
                              conditional = num_or_null(unname(r2$value$R2_conditional)))
      if (length(r2$warnings) || length(r2$messages))
        res$r2_nakagawa$warnings <- c(r2$warnings, r2$messages)
    } else extra_notes <- c(extra_notes, paste("r2_nakagawa failed:",
                             if (inherits(r2, "error")) conditionMessage(r2) else "returned NA"))
    ic <- tryCatch(capture(performance::icc(m)), error = function(e) e)
    if (!inherits(ic, "error") && is.list(ic$value)) {
      res$icc <- list(adjusted = num_or_null(ic$value$ICC_adjusted),
                      unadjusted = num_or_null(ic$value$ICC_unadjusted),
                      conditional = num_or_null(ic$value$ICC_conditional))
      if (length(ic$warnings) || length(ic$messages)) res$icc$warnings <- c(ic$warnings, ic$messages)
    } else extra_notes <- c(extra_notes, paste("icc not available:",
                             if (inherits(ic, "error")) conditionMessage(ic) else "performance::icc() returned NA (variance component(s) at zero)."))
    res$performance_version <- VERS$performance
  }

  ## profile confidence intervals (small models only, < 30 s)
  if (profile) {
    pc <- with_timeout(function() capture(confint(m, method = "profile", oldNames = FALSE)), 30)
    if (pc$ok) {
      ci <- pc$value$value
      res$confint_profile <- setNames(lapply(seq_len(nrow(ci)), function(i) arr(ci[i, ])), rownames(ci))
      res$confint_profile_level <- 0.95
      if (length(pc$value$warnings)) res$confint_profile_warnings <- pc$value$warnings
    } else extra_notes <- c(extra_notes, sprintf("profile confint not stored (%s).",
                              if (pc$timeout) "took longer than 30 s" else pc$error))
  }

  ## notes
  wtxt <- c(fit_warn, fit$messages)
  allw <- unique(c(fit_warn, conv_msgs))
  allw <- allw[!(trimws(allw) %in% trimws(fit$messages))]   # e.g. the singular-fit message is a message, not a warning
  res$warnings <- if (length(allw)) as.list(allw) else list()
  res$messages <- if (length(fit$messages)) as.list(fit$messages) else list()
  if (length(ext$warnings)) res$extraction_warnings <- as.list(ext$warnings)
  ## convergence warnings: refit with a different optimizer so users can judge the reference's precision
  if (any(grepl("failed to converge|unidentifiable|degenerate", allw))) {
    ctrl <- if (glmm) glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 2e5))
            else lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 2e5))
    alt <- tryCatch(capture(update(m, control = ctrl)), error = function(e) e)
    if (!inherits(alt, "error")) {
      ma <- alt$value
      res$alt_optimizer_check <- list(
        optimizer = "bobyqa (all phases), maxfun = 2e5",
        fixef = named_list(fixef(ma)), theta = arr(getME(ma, "theta")),
        logLik = as.numeric(logLik(ma)),
        logLik_minus_reference = as.numeric(logLik(ma)) - as.numeric(ll),
        max_abs_fixef_diff = max(abs(fixef(ma) - fe)),
        max_abs_theta_diff = max(abs(getME(ma, "theta") - getME(m, "theta"))),
        warnings = as.list(unique(c(alt$warnings, unlist(ma@optinfo$conv$lme4$messages)))))
      notes <- c(notes, sprintf(paste0("Convergence warning: refitting with bobyqa gives logLik difference %.3g, ",
        "max |fixef diff| %.3g, max |theta diff| %.3g (see alt_optimizer_check); the reference values are those of the default optimizer."),
        res$alt_optimizer_check$logLik_minus_reference, res$alt_optimizer_check$max_abs_fixef_diff,
        res$alt_optimizer_check$max_abs_theta_diff))
    }
  }
  nn <- c(notes)
  if (length(allw)) nn <- c(nn, paste0("WARNINGS during fit: ", paste(gsub("\n", " ", allw), collapse = " | ")))
  if (length(fit$messages)) nn <- c(nn, paste0("Messages during fit: ", paste(gsub("\n", " ", fit$messages), collapse = " | ")))
  if (length(re_j$truncated)) nn <- c(nn, paste0("ranef/ranef_condsd truncated to the first ", KEEP_LEVELS,
      " levels (R level order) for: ", paste(sprintf("%s (%d levels)", names(re_j$truncated),
      vapply(re_j$truncated, function(z) z$n_levels, 1)), collapse = ", "), "."))
  nn <- c(nn, extra_notes)
  res$notes <- paste(nn[nzchar(nn)], collapse = " ")
  cat(sprintf("fit %.2fs%s\n", fit_time, if (length(allw) || length(fit$messages)) " [warn/msg]" else ""))
  CASES[[id]] <<- res
  MODELS[[id]] <<- m
  invisible(m)
}

## LRT between two stored cases (m0 nested in m1)
add_anova <- function(id0, id1) {
  m0 <- MODELS[[id0]]; m1 <- MODELS[[id1]]
  a <- capture(anova(m0, m1))
  tab <- as.data.frame(a$value)
  rn <- c(m0 = id0, m1 = id1)[rownames(tab)]
  rows <- lapply(seq_len(nrow(tab)), function(i) list(
    case = unname(rn[i]), npar = tab$npar[i], AIC = tab$AIC[i], BIC = tab$BIC[i], logLik = tab$logLik[i],
    deviance = tab$deviance[i], Chisq = num_or_null(tab$Chisq[i]), Df = num_or_null(tab$Df[i]),
    Pr = num_or_null(tab[["Pr(>Chisq)"]][i])))
  refit <- any(grepl("refitting", a$messages))
  mk <- function(other) list(other_case = other, models = arr(unname(rn)), table = rows,
    Chisq = tab$Chisq[2], Df = tab$Df[2], Pr = tab[["Pr(>Chisq)"]][2], refit_ML = refit,
    note = if (refit) "anova() refitted the REML model(s) with ML before the LRT; table values are for the ML refits" else NULL)
  CASES[[id0]]$anova_lrt <<- mk(id1)
  CASES[[id1]]$anova_lrt <<- mk(id0)
  invisible(tab)
}

write_all <- function() {
  for (id in names(CASES)) write_json_file(CASES[[id]], file.path(OUT, "cases", paste0(id, ".json")))
}

## EXTRA: documentation of the new cases (same table format as the shared README)
write_extra_md <- function() {
  lines <- c("# Extra lme4 reference cases", "",
    "Cases added to the copies of the shared golden fixtures (see `README.md` in this folder, whose conventions section applies unchanged). They cover model features the shared set does not: factors inside random-effect terms, a 3x3 correlated term, a no-intercept random slope crossed with an intercept, an integer grouping column, three-level nesting, weights with correlated slopes, an `I()` term in the fixed part, GLMMs with non-canonical links (incl. a gaussian GLMM with the log link), Gamma, inverse Gaussian, crossed Poisson and negative binomial families, `nAGQ = 0` fits (binomial, Poisson with three random intercepts, crossed Bernoulli) on shared datasets, and a second `glmer.nb` fit that also records glmer.nb's starting theta and number of theta refits.",
    "",
    sprintf("Generated by `generate_extra.R` with %s, lme4 %s, Matrix %s, lmerTest %s, pbkrtest %s, performance %s. Regenerate with:",
            VERS$R_string, VERS$lme4, VERS$Matrix, VERS$lmerTest, VERS$pbkrtest,
            if (HAVE_PERF) VERS$performance else "not installed (so these cases have no `r2_nakagawa`/`icc`)"),
    "", "```", "cd tests/reference && Rscript generate_extra.R", "```", "",
    "The script only (re)writes the files listed below (`cases/<case>.json`, `data/<dataset>.csv.gz`, this file); `sleepstudy.csv.gz`, `cbpp.csv.gz`, `grouseticks.csv.gz` and `synth_bernoulli.csv.gz` are shared datasets, rebuilt as the shared generate.R builds them and checked to be identical to the shipped files, but not rewritten. Datasets are compressed with `gzip -9 -n`, so a rerun reproduces them byte for byte; in the JSON only `fit_time_s` and the `time_s` fields change between runs, EXCEPT for fits with more than one random-effects term: with the same R/lme4/Matrix and the same reference BLAS/LAPACK, those land on one of (at least) two floating-point paths that depend on the process's memory layout (address-space randomization: the same fit in fresh R processes alternates between two results; under `setarch -R` it is stable). Observed spreads: synth_no_intercept_re_reml theta 3e-11 relative, synth_poisson_crossed theta 2e-7, grouseticks_poisson_nagq0 theta 3e-7 (fixef 3e-8, logLik 4e-12), synth_bernoulli_crossed_nagq0 theta 2e-7 (fixef se 1.5e-7). So a rerun may rewrite those cases with different last digits; the committed JSON are kept from the original runs (restore them with `git checkout`). Tests should not compare such fits more tightly than about 1e-6 relative in theta.",
    "", "## Cases", "",
    "| case | dataset | formula | fit | what it exercises | warnings/messages |",
    "|---|---|---|---|---|---|")
  for (id in names(CASES)) {
    cs <- CASES[[id]]
    fit <- if (cs$kind == "lmer") paste0("lmer ", if (cs$REML) "REML" else "ML") else
      paste0(if (!is.null(cs$nb_theta)) "glmer.nb " else "glmer ", cs$family, "(", cs$link, ")",
             if (!is.null(cs$nAGQ) && cs$nAGQ != 1) paste0(" nAGQ=", cs$nAGQ) else "")
    if (!is.null(cs$weights)) fit <- paste0(fit, ", weights=", cs$weights)
    if (!is.null(cs$offset)) fit <- paste0(fit, ", offset=", cs$offset)
    ww <- c(unlist(cs$warnings), unlist(cs$messages))
    lines <- c(lines, sprintf("| %s | %s | `%s` | %s | %s | %s |", id, cs$dataset,
      gsub("|", "\\|", cs$formula, fixed = TRUE), fit, gsub("|", "\\|", cs$exercises, fixed = TRUE),
      if (length(ww)) gsub("|", "\\|", gsub("\n", " ", paste(ww, collapse = "; ")), fixed = TRUE) else "none"))
  }
  lines <- c(lines, "", "## Datasets", "")
  for (nm in sort(ls(DATASETS))) {
    ds <- get(nm, envir = DATASETS)
    lines <- c(lines, sprintf("- `data/%s.gz` (%d rows x %d cols): %s", ds$file, nrow(ds$data), ncol(ds$data), ds$description))
  }
  lines <- c(lines, "", "## Additions to the conventions", "",
"- `formula_python` (only where the lme4 formula is not valid patsy): the same model in patsy syntax for the fixed part (`I(Days^2)` is written `I(Days**2)`); coefficient names in `fixef`/`vcov_names` stay lme4's (`I(Days^2)`).",
"- `family` is the family name as R reports it (`family(m)$family`): for `glmer.nb` fits that is `Negative Binomial(<theta>)` with theta printed to 4 significant digits; the estimated theta itself is `nb_theta` (`getME(m, \"glmer.nb.theta\")`, full precision). The final fit is a `glmer` fit with theta fixed at `nb_theta` (its `vcov`, `ranef`, profile intervals treat theta as known), but `df` counts theta (lme4's parameter count adds 1 for glmer.nb fits: df = 2 fixef + 1 theta + 1 nb_theta = 4); `sigma` is null (no scale parameter; lme4's `sigma()` returns 1), as for binomial/poisson.",
"- Gamma, inverse-Gaussian and gaussian(log) fits (estimated dispersion): lme4 uses TWO different dispersion estimates. `sigma` = `sigma(m)` = sqrt(pwrss / n), where pwrss = sum of squared Pearson residuals + |u|^2 (spherical random effects). The Laplace `logLik` is -(family$aic(y, 1, mu, wt, dev) + ldL2 + |u|^2) / 2, where R's `Gamma()$aic` / `inverse.gaussian()$aic` / `gaussian()$aic` plug in the dispersion dev/n (dev = sum of squared deviance residuals) and ADD 2 (the aic functions count the dispersion parameter), so `logLik` is not the log-density at dispersion sigma^2. `df` counts the dispersion (fixef + theta + 1). As for lmer fits, `varcorr` scales the random-effect variances by `sigma` (vcov = (theta * sigma)^2 for a random intercept). lme4 cannot profile these fits, so they have no `confint_profile`.",
"- `glmer(family = gaussian(link = \"log\"))` (synth_gaussian_log): a genuine GLMM fit (PIRLS + Laplace, like the other glmer fits); lme4 hands only `gaussian(link = \"identity\")` to `lmer()` (with a deprecation warning), so a log-link gaussian fit is NOT the same as an LMM of log(y). There are no prior weights here, so `gaussian()$aic` = n (log(2 pi dev/n) + 1) + 2, with dev = sum of squared residuals y - mu (deviance and Pearson residuals coincide for the gaussian family), and sigma(m)^2 = (dev + |u|^2)/n.",
"- An integer grouping column is kept as R `integer` in `columns` (lme4 converts it with `factor()` when it builds the random-effects terms, so its levels are the integer labels in NUMERIC order, e.g. \"2\", \"10\", \"105\"); `factor_levels` has no entry for it (it is not a factor in the data). The order of the `ranef` levels is that numeric order. In `predict_newdata` its unseen level is the number max + 1000 (as in the shared generator for numeric grouping columns), not `NEW_LEVEL`.",
"- Factors inside a random-effects term: lme4 names the columns like fixed-effect columns (`(0 + cond | subj)` gives `conda`, `condb`, `condc`, i.e. full dummy coding without an intercept; `(1 + cond | subj)` gives `(Intercept)`, `condb`, `condc`). These names appear in `ranef`, `varcorr` (`var1`/`var2`) and `theta_names` (`subj.condb.conda`, ...).",
"- `nAGQ = 0` fits (`nAGQ` is 0 in the JSON; `fit` says nAGQ=0 above): lme4 stops after its first stage, which optimizes theta only (optimizer bobyqa, so `optimizer` is `bobyqa`) while the fixed effects are estimated together with the conditional modes inside the penalized IRLS at each theta. `logLik` is -1/2 times that nAGQ = 0 objective at the estimated theta. `nAGQ0_check` gives `minus2logLik`, `nAGQ0_devfun_at_theta` (lme4's own `glmer(..., nAGQ = 0, devFunOnly = TRUE)` function at theta; equals `minus2logLik`) and `laplace_devfun_at_theta_fixef` (the nAGQ = 1 Laplace deviance function at c(theta, fixef)), which is close to (here within about 1e-4) but not exactly the same number: compare a reimplementation's nAGQ = 0 logLik with the nAGQ = 0 objective, not with the Laplace one. No finite-difference Hessian is computed (`optinfo$derivs` is NULL; no gradient convergence check runs), so `vcov`/`fixef_se` (= `vcov(m)`, lme4's default) come from the RX factor and are identical to `vcov_no_hessian`/`fixef_se_no_hessian`. lme4 1.1-31 cannot profile nAGQ = 0 fits (`confint(m, method = \"profile\")` stops with `theta size mismatch`), so they have no `confint_profile`.",
"- `nb_details` (synth_negbin_estimated only): `nb_theta_start` is glmer.nb's starting theta, computed as glmer.nb computes it (lme4 R/nbinom.R): the Poisson `glmer` fit of the same formula and data, then `lme4:::est_theta()` = `MASS::theta.ml(y, fitted(poisson fit), limit = 20, eps = 2 * tol)` with tol = 5e-5; `nb_theta_start_poisson_logLik` is that Poisson fit's logLik. glmer.nb then refits `glmer(family = negative.binomial(theta))` at the start, and minimizes -2 logLik over log(theta) with `optimize()` on `nb_optimize$interval` = log(nb_theta_start) + c(-3, 3), tol = 5e-5, refitting glmer (`refit()` starting from the previous fit) at each evaluation; `nb_nevals` is `attr(m, \"nevals\")`, the number of those refits. The stored fit is the LAST refit optimize() evaluated and `nb_theta` (= `getME(m, \"glmer.nb.theta\")`) is its theta; `nb_theta_optimize_minimum` is exp(optimize()$minimum), which glmer.nb writes into `m@call$family` and which can differ slightly from `nb_theta` (optimize's last evaluation need not be its returned minimum; lme4 only checks the two with all.equal).",
"- Three-level nesting `(1 | school/class)`: lme4 expands it to `(1 | school) + (1 | class:school)`; the nested factor is named `class:school`, its levels are `<class>:<school>` and their order (in `ranef`) is class-major, as R's `:` on factors gives: `c1:sch01`, `c1:sch02`, ..., `c1:sch20`, `c2:sch01`, ... (not the order of appearance, not school-major). Its last `predict_newdata` row keeps a known school with class `NEW_LEVEL` (an unseen `class:school` level).")
  writeLines(lines, file.path(OUT, "EXTRA.md"))
}

## ---------------------------------------------------------------------------
## EXTRA suite: datasets and cases
## ---------------------------------------------------------------------------
OUT <- get_script_dir()
dir.create(file.path(OUT, "data"), showWarnings = FALSE, recursive = TRUE)
dir.create(file.path(OUT, "cases"), showWarnings = FALSE, recursive = TRUE)
T_START <- proc.time()[["elapsed"]]

## ---- datasets ---------------------------------------------------------------------
register_dataset("sleepstudy", lme4::sleepstudy, "lme4::sleepstudy (Reaction, Days, Subject), as shipped (the shared dataset; not rewritten).",
                 shipped = TRUE)

set.seed(7101)
local({
  S <- 40; reps <- 6
  d <- expand.grid(rep = seq_len(reps), cond = c("a", "b", "c"), subj = sprintf("s%02d", seq_len(S)),
                   stringsAsFactors = FALSE)
  d$subj <- factor(d$subj); d$cond <- factor(d$cond, levels = c("a", "b", "c"))
  sds <- c(2, 2.5, 3)
  R <- matrix(c(1, 0.6, 0.3, 0.6, 1, 0.5, 0.3, 0.5, 1), 3)
  L <- t(chol(diag(sds) %*% R %*% diag(sds)))
  b <- t(L %*% matrix(rnorm(3 * S), 3))                        # S x 3: subject effect per condition
  n <- nrow(d)
  d$y <- 10 + c(0, 1.5, -1)[as.integer(d$cond)] + b[cbind(as.integer(d$subj), as.integer(d$cond))] + rnorm(n, 0, 1.5)
  d <- d[sample(n), ]                                          # rows in random order
  register_dataset("synth_factor_re", d[, c("y", "cond", "subj")],
    "synthetic (set.seed(7101)): 40 subjects x 3 conditions (a, b, c) x 6 replicates, rows in random order; subject effects per condition correlated (sds 2, 2.5, 3), residual sd 1.5.")
})
set.seed(7102)
local({
  G <- 60; n_per <- 20; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4); z <- round(runif(n, -1, 1), 4)
  sds <- c(1.5, 0.8, 0.6)
  R <- matrix(c(1, 0.4, -0.3, 0.4, 1, 0.2, -0.3, 0.2, 1), 3)
  L <- t(chol(diag(sds) %*% R %*% diag(sds)))
  b <- t(L %*% matrix(rnorm(3 * G), 3))
  gi <- as.integer(g)
  y <- 5 + 1 * x - 0.7 * z + b[gi, 1] + b[gi, 2] * x + b[gi, 3] * z + rnorm(n, 0, 1)
  register_dataset("synth_three_slopes", data.frame(y, x, z, g),
    "synthetic (set.seed(7102)): 60 groups x 20 rows; correlated random intercept and slopes on x and z (3x3 covariance, sds 1.5, 0.8, 0.6); x, z rounded to 4 decimals.")
})
set.seed(7103)
local({
  G <- 30; H <- 20
  d <- expand.grid(h = sprintf("h%02d", seq_len(H)), g = sprintf("g%02d", seq_len(G)), stringsAsFactors = TRUE)
  d <- rbind(d, d)                                             # every g x h cell twice
  n <- nrow(d)
  d$x <- round(runif(n, 0, 4), 4)
  bg <- rnorm(G, 0, 0.7); bh <- rnorm(H, 0, 1.2)
  d$y <- 2 + 0.5 * d$x + bg[as.integer(d$g)] * d$x + bh[as.integer(d$h)] + rnorm(n, 0, 1)
  register_dataset("synth_no_intercept_re", d[, c("y", "x", "g", "h")],
    "synthetic (set.seed(7103)): g (30 levels) x h (20 levels) fully crossed, each cell twice (1200 rows); random slope on x by g (no random intercept for g), random intercept by h; x ~ U(0, 4) rounded to 4 decimals.")
})
set.seed(7104)
local({
  G <- 25
  ids <- sort(sample(1:120, G))                                # non-contiguous integer ids (2-3 digits)
  sizes <- c(1, 1, 2, 2, 3, sample(4:40, G - 5, replace = TRUE))[sample(G)]   # unbalanced, some tiny groups
  g <- rep(ids, times = sizes)
  n <- length(g)
  x <- round(rnorm(n, 50, 10), 3)
  b <- setNames(rnorm(G, 0, 3), ids)
  y <- 20 + 0.3 * x + b[as.character(g)] + rnorm(n, 0, 2.5)
  o <- sample(n)                                               # rows in random order
  d <- data.frame(y = unname(y[o]), x = x[o], g = as.integer(g[o]))
  register_dataset("synth_integer_groups", d,
    sprintf("synthetic (set.seed(7104)): %d rows; `g` is an INTEGER column with 25 non-contiguous ids between 1 and 120 and group sizes 1 to 40 (unbalanced); rows in random order.", n))
})
set.seed(7105)
local({
  S <- 20; C <- 5; n_per <- 8
  d <- expand.grid(stu = seq_len(n_per), class = sprintf("c%d", seq_len(C)), school = sprintf("sch%02d", seq_len(S)),
                   stringsAsFactors = TRUE)
  n <- nrow(d)
  d$x <- round(rnorm(n), 4)
  bs <- rnorm(S, 0, 2); bc <- matrix(rnorm(S * C, 0, 1), S, C)
  d$y <- 50 + 2 * d$x + bs[as.integer(d$school)] + bc[cbind(as.integer(d$school), as.integer(d$class))] + rnorm(n, 0, 1.5)
  register_dataset("synth_nested_three", d[, c("y", "x", "school", "class")],
    "synthetic (set.seed(7105)): 20 schools x 5 classes x 8 pupils (800 rows); class labels c1..c5 are reused in every school (nesting only through school/class); school sd 2, class-within-school sd 1, residual sd 1.5.")
})
set.seed(7106)
local({
  G <- 30; n_per <- 20; n <- G * n_per
  g <- factor(sprintf("grp%02d", rep(seq_len(G), each = n_per)))
  x <- round(runif(n, -2, 2), 4)
  w <- round(runif(n, 0.5, 3), 3)
  L <- t(chol(matrix(c(1.2^2, -0.5 * 1.2 * 0.6, -0.5 * 1.2 * 0.6, 0.6^2), 2)))
  b <- t(L %*% matrix(rnorm(2 * G), 2))
  gi <- as.integer(g)
  y <- 1 + 0.8 * x + b[gi, 1] + b[gi, 2] * x + rnorm(n, 0, 1.5 / sqrt(w))
  register_dataset("synth_weighted_slopes", data.frame(y, x, g, w),
    "synthetic (set.seed(7106)): 30 groups x 20 rows; correlated random intercept + slope (sds 1.2, 0.6, corr -0.5); residual sd 1.5/sqrt(w), precision weights w ~ U(0.5, 3) rounded to 3 decimals.")
})
set.seed(7201)
local({
  G <- 50; n_per <- 30; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4)
  b <- rnorm(G, 0, 0.8)
  y <- rbinom(n, 1, pnorm(-0.2 + 0.7 * x + b[as.integer(g)]))
  register_dataset("synth_probit", data.frame(y, x, g),
    "synthetic (set.seed(7201)): Bernoulli 0/1 response, P(y = 1) = pnorm(-0.2 + 0.7 x + b_g), b_g ~ N(0, 0.8^2); 50 groups x 30 rows.")
})
set.seed(7202)
local({
  G <- 60; n_per <- 10; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4)
  size <- sample(5:20, n, replace = TRUE)
  b <- rnorm(G, 0, 0.5)
  p <- 1 - exp(-exp(-1 + 0.6 * x + b[as.integer(g)]))
  s <- rbinom(n, size, p)
  register_dataset("synth_cloglog", data.frame(s, n = size, x, g),
    "synthetic (set.seed(7202)): binomial counts s out of n (n = 5..20), P = 1 - exp(-exp(-1 + 0.6 x + b_g)), b_g ~ N(0, 0.5^2); 60 groups x 10 rows.")
})
set.seed(7203)
local({
  G <- 40; n_per <- 15; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4)
  b <- rnorm(G, 0, 0.4)
  mu <- exp(1 + 0.5 * x + b[as.integer(g)])
  y <- rgamma(n, shape = 5, rate = 5 / mu)
  register_dataset("synth_gamma", data.frame(y, x, g),
    "synthetic (set.seed(7203)): positive continuous y ~ Gamma(shape 5, mean exp(1 + 0.5 x + b_g)), b_g ~ N(0, 0.4^2); 40 groups x 15 rows.")
})
set.seed(7204)
local({
  A <- 30; B <- 25
  d <- expand.grid(b = sprintf("b%02d", seq_len(B)), a = sprintf("a%02d", seq_len(A)), stringsAsFactors = TRUE)
  d <- rbind(d, d)
  n <- nrow(d)
  d$x <- round(rnorm(n), 4)
  ba <- rnorm(A, 0, 0.5); bb <- rnorm(B, 0, 0.3)
  d$count <- rpois(n, exp(0.7 + 0.4 * d$x + ba[as.integer(d$a)] + bb[as.integer(d$b)]))
  register_dataset("synth_poisson_crossed", d[, c("count", "x", "a", "b")],
    "synthetic (set.seed(7204)): Poisson counts, a (30 levels) x b (25 levels) fully crossed, each cell twice (1500 rows); sds 0.5 (a), 0.3 (b).")
})
set.seed(7205)
local({
  G <- 50; n_per <- 20; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4)
  b <- rnorm(G, 0, 0.5)
  count <- as.integer(rnbinom(n, size = 2, mu = exp(1 + 0.4 * x + b[as.integer(g)])))   # rnbinom returns doubles
  register_dataset("synth_negbin", data.frame(count, x, g),
    "synthetic (set.seed(7205)): negative binomial counts (size/theta = 2, mean exp(1 + 0.4 x + b_g)), b_g ~ N(0, 0.5^2); 50 groups x 20 rows.")
})
set.seed(7206)
local({
  G <- 40; n_per <- 15; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4)
  b <- rnorm(G, 0, 0.3)
  mu <- exp(0.5 + 0.3 * x + b[as.integer(g)])
  lambda <- 10
  ## inverse-Gaussian draws (transformation method with one normal and one uniform per draw)
  v <- rnorm(n)^2
  r <- mu + mu^2 * v / (2 * lambda) - mu / (2 * lambda) * sqrt(4 * mu * lambda * v + mu^2 * v^2)
  y <- ifelse(runif(n) <= mu / (mu + r), r, mu^2 / r)
  register_dataset("synth_invgauss", data.frame(y, x, g),
    "synthetic (set.seed(7206)): positive y ~ inverse Gaussian(mean exp(0.5 + 0.3 x + b_g), shape 10), b_g ~ N(0, 0.3^2); 40 groups x 15 rows.")
})
set.seed(7207)
local({
  G <- 40; n_per <- 30; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(rnorm(n), 4)
  b <- rnorm(G, 0, 0.6)
  count <- as.integer(rnbinom(n, size = 1.3, mu = exp(0.5 + 0.4 * x + b[as.integer(g)])))   # rnbinom returns doubles
  register_dataset("synth_negbin2", data.frame(count, x, g),
    "synthetic (set.seed(7207)): negative binomial counts (size/theta = 1.3, mean exp(0.5 + 0.4 x + b_g)), x ~ N(0, 1) rounded to 4 decimals, b_g ~ N(0, 0.6^2); 40 groups x 30 rows.")
})
set.seed(7208)
local({
  G <- 30; n_per <- 20; n <- G * n_per
  g <- factor(sprintf("g%02d", rep(seq_len(G), each = n_per)))
  x <- round(runif(n, 0, 2), 4)
  b <- rnorm(G, 0, 0.3)
  y <- round(exp(1.0 + 0.4 * x + b[as.integer(g)]) + rnorm(n, 0, 0.5), 4)
  stopifnot(all(y > 0))                                        # the log link's starting values need y > 0
  register_dataset("synth_gaussian_log", data.frame(y, x, g),
    "synthetic (set.seed(7208)): positive continuous y = exp(1 + 0.4 x + b_g) + e, e ~ N(0, 0.5^2) (additive normal error on the response scale), x ~ U(0, 2) and y rounded to 4 decimals, b_g ~ N(0, 0.3^2), all y > 0; 30 groups x 20 rows.")
})

## shared datasets reused by the nAGQ = 0 cases: built exactly as the shared generate.R builds them,
## checked against the shipped .csv.gz, not rewritten
cbpp <- lme4::cbpp
cbpp$prop <- cbpp$incidence / cbpp$size
register_dataset("cbpp", cbpp, "lme4::cbpp plus `prop` = incidence/size (the shared dataset; not rewritten).", shipped = TRUE)
register_dataset("grouseticks", lme4::grouseticks, "lme4::grouseticks, as shipped (`cHEIGHT` = HEIGHT centred, supplied by lme4) (the shared dataset; not rewritten).",
                 shipped = TRUE)
set.seed(505)
local({   # verbatim from the shared generate.R
  S <- 60; I <- 50
  d <- expand.grid(item = sprintf("item%02d", 1:I), subj = sprintf("subj%02d", 1:S), stringsAsFactors = TRUE)
  d <- d[, c("subj", "item")]
  n <- nrow(d)
  d$x <- rnorm(n)
  d$cond <- factor(ifelse(runif(n) < 0.5, "control", "treat"))
  bs <- rnorm(S, 0, 1); bi <- rnorm(I, 0, 0.6)
  eta <- -0.3 + 0.8 * d$x + 0.5 * (d$cond == "treat") + bs[as.integer(d$subj)] + bi[as.integer(d$item)]
  d$y <- rbinom(n, 1, plogis(eta))
  register_dataset("synth_bernoulli", d[, c("y", "x", "cond", "subj", "item")],
    "synthetic (set.seed(505)): Bernoulli 0/1 response, 60 subjects x 50 items fully crossed (3000 rows) (the shared dataset; not rewritten).",
    shipped = TRUE)
})

## ---- LMM cases -------------------------------------------------------------------------
run_case("synth_factor_re_reml", "synth_factor_re", "y ~ cond + (0 + cond | subj)", REML = TRUE,
  exercises = "3-level factor inside a random-effects term without intercept: one random effect per condition (conda, condb, condc), 3x3 covariance")
run_case("synth_factor_re_intercept_reml", "synth_factor_re", "y ~ cond + (1 + cond | subj)", REML = TRUE,
  exercises = "factor inside a random-effects term with intercept (treatment contrasts: (Intercept), condb, condc); a reparametrisation of synth_factor_re_reml (same logLik)")
run_case("synth_three_slopes_ml", "synth_three_slopes", "y ~ x + z + (1 + x + z | g)", REML = FALSE,
  exercises = "3x3 correlated random-effects term (intercept + two slopes), ML")
run_case("synth_no_intercept_re_reml", "synth_no_intercept_re", "y ~ x + (x - 1 | g) + (1 | h)", REML = TRUE,
  exercises = "random slope without random intercept written as (x - 1 | g), crossed with a random intercept")
run_case("synth_integer_groups_reml", "synth_integer_groups", "y ~ x + (1 | g)", REML = TRUE,
  exercises = "grouping variable stored as an integer column (lme4 makes it a factor; levels in numeric order), unbalanced groups of 1 to 40 rows")
run_case("synth_nested_three_reml", "synth_nested_three", "y ~ x + (1 | school/class)", REML = TRUE,
  exercises = "three-level nesting via / with class labels reused across schools (lme4 expands to (1 | school) + (1 | class:school))")
run_case("synth_weighted_slopes_ml", "synth_weighted_slopes", "y ~ x + (1 + x | g)", REML = FALSE, weights = "w",
  exercises = "prior (precision) weights with a correlated random intercept + slope, ML")
run_case("sleepstudy_poly_reml", "sleepstudy", "Reaction ~ Days + I(Days^2) + (Days | Subject)", REML = TRUE,
  extra = list(formula_python = "Reaction ~ Days + I(Days**2) + (Days | Subject)"),
  exercises = "I() transformed term in the fixed part (fixef name I(Days^2); patsy spelling in formula_python)")

## ---- GLMM cases ------------------------------------------------------------------------
GN_NOTE <- paste("lme4 -2*logLik here = family$aic(y, 1, mu, wt, dev) + ldL2 + |u|^2, where the family's aic() plugs in the dispersion",
  "dev/n (dev = sum of squared deviance residuals) and adds 2; sigma(m)^2 = pwrss/n = (sum of squared Pearson residuals + |u|^2)/n",
  "is a different dispersion estimate (see EXTRA.md).")
run_case("synth_binomial_probit", "synth_probit", "y ~ x + (1 | g)", kind = "glmer", family = "binomial(link = \"probit\")",
  exercises = "Bernoulli GLMM with the probit link (non-canonical)")
run_case("synth_binomial_cloglog", "synth_cloglog", "cbind(s, n - s) ~ x + (1 | g)", kind = "glmer", family = "binomial(link = \"cloglog\")",
  exercises = "binomial counts (cbind) with the complementary log-log link (non-canonical)")
run_case("synth_gamma_log", "synth_gamma", "y ~ x + (1 | g)", kind = "glmer", family = "Gamma(link = \"log\")", notes = GN_NOTE,
  exercises = "Gamma GLMM with log link (estimated dispersion)")
run_case("synth_poisson_crossed", "synth_poisson_crossed", "count ~ x + (1 | a) + (1 | b)", kind = "glmer", family = "poisson",
  exercises = "Poisson GLMM with crossed random intercepts")
run_case("synth_negbin", "synth_negbin", "count ~ x + (1 | g)", kind = "glmer", nb = TRUE,
  notes = paste("glmer.nb: theta (nb_theta) is estimated by alternating with glmer fits; the stored fit is the final glmer fit with",
    "family negative.binomial(theta = nb_theta), so vcov/ranef/confint treat theta as known, while df counts it (+1)."),
  exercises = "negative binomial GLMM via glmer.nb (theta estimated; see nb_theta)")
run_case("synth_inverse_gaussian", "synth_invgauss", "y ~ x + (1 | g)", kind = "glmer", family = "inverse.gaussian(link = \"log\")", notes = GN_NOTE,
  exercises = "inverse-Gaussian GLMM with log link")


## ---- nAGQ = 0 fits and a second glmer.nb fit ---------------------------------------
run_case("cbpp_binomial_nagq0", "cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", kind = "glmer", family = "binomial", nAGQ = 0,
  exercises = "nAGQ = 0 (theta optimized with beta inside PIRLS, no Laplace stage; vcov from RX, no Hessian); same model as the shared cbpp_binomial")
run_case("grouseticks_poisson_nagq0", "grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", kind = "glmer", family = "poisson", nAGQ = 0,
  notes = "Same model as the shared grouseticks_poisson (centred height cHEIGHT; INDEX is an observation-level random effect), fitted with nAGQ = 0.",
  exercises = "nAGQ = 0 with three random intercepts incl. an observation-level one (Poisson); same model as the shared grouseticks_poisson")
run_case("synth_bernoulli_crossed_nagq0", "synth_bernoulli", "y ~ x + cond + (1 | subj) + (1 | item)", kind = "glmer", family = "binomial", nAGQ = 0,
  exercises = "nAGQ = 0 with crossed random intercepts, Bernoulli (3000 rows); same model as the shared synth_bernoulli_crossed")
run_case("synth_negbin_estimated", "synth_negbin2", "count ~ x + (1 | g)", kind = "glmer", nb = TRUE, nb_details = TRUE,
  notes = paste("glmer.nb on a second NB dataset (true theta 1.3); glmer.nb(count ~ x + (1 | g)) on synth_negbin would repeat the case synth_negbin.",
    "theta (nb_theta) is estimated by optimize() over log(theta), refitting glmer at each step; the stored fit is the final glmer fit with",
    "family negative.binomial(theta = nb_theta), so vcov/ranef/confint treat theta as known, while df counts it (+1).",
    "nb_theta_start (glmer.nb's start, MASS::theta.ml on the Poisson glmer fit), nb_nevals, nb_optimize: see EXTRA.md."),
  exercises = "negative binomial GLMM via glmer.nb with theta estimation details: starting theta from the Poisson fit (nb_theta_start), number of theta refits (nb_nevals)")

## ---- gaussian GLMM with a non-identity link ------------------------------------------
run_case("synth_gaussian_log", "synth_gaussian_log", "y ~ x + (1 | g)", kind = "glmer", family = "gaussian(link = \"log\")",
  notes = paste(GN_NOTE, "For the gaussian family the deviance residuals are the Pearson residuals (y - mu), so the two dispersion estimates",
    "differ only by |u|^2: logLik uses dev/n, sigma(m)^2 = (dev + |u|^2)/n. lme4 diverts only gaussian(identity) to lmer() (with a deprecation warning); this log-link fit is a true glmer fit."),
  exercises = "gaussian GLMM with the log link (a true glmer fit by PIRLS/Laplace, not the lmer shortcut lme4 takes for the identity link; estimated dispersion)")

write_all()
write_extra_md()
cat(sprintf("done: %d cases in %.1f s\n", length(CASES), proc.time()[["elapsed"]] - T_START))
