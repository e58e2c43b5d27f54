#!/usr/bin/env Rscript
## generate_ptukey.R -- upper-tail probabilities of the studentized range Q (the range of k
## standard normals over an independent sqrt(chi^2_df / df)), written to ptukey.json next to
## this script: the reference for mixedmodels' studentized_range_sf, the Tukey adjustment of
## emmeans' pairwise comparisons.
##
## Grid: k in {2, 3, 4, 5, 6, 10, 20}, df in {2, 3, 5, 10, 20, 42, 100, 476, 1000, Inf}; for
## each pair q = 0 and 30 values up to q_max, where the Bonferroni bound
## choose(k, 2) * 2 * pt(-q / sqrt(2), df) is 1e-12, so that p runs from 1 down to about 1e-12.
## Two answers per q:
##   ptukey      R's ptukey(q, k, df, lower.tail = FALSE) (Copenhaver & Holland 1988), what
##               emmeans' Tukey p-values are. It returns 1 - (its integral), accurate to about
##               1e-10 absolute at best; its fixed integration also fails outright far in the
##               tail for small df (0 for df = 3, about 5e-7 for df = 5).
##   integrate   the same probability to about 1e-12 relative: for k = 2 exactly
##               2 * pt(-q / sqrt(2), df); otherwise R's adaptive quadrature (integrate, i.e.
##               QUADPACK) of its definition, computed in logs with no 1 - x cancellation:
##               P(range > w) = k * int phi(x) Phibar(x)^(k-1) [1 - (1 - Phibar(x+w)/Phibar(x))^(k-1)] dx
##               (x the smallest of the k; the bracket the chance that one of the other k - 1
##               exceeds x + w given all exceed x), and for finite df its expectation over
##               S = sqrt(chi^2_df / df), P(Q > q) = E[P(range > q S)].
##
## Usage:  cd tests/reference && Rscript generate_ptukey.R   (about 10 minutes)
## Requires: jsonlite.
suppressPackageStartupMessages(library(jsonlite))
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})

range_upper <- function(w, k) {
  f <- function(x) {
    lx <- pnorm(x, lower.tail = FALSE, log.p = TRUE)
    ratio <- exp(pnorm(x + w, lower.tail = FALSE, log.p = TRUE) - lx)
    k * exp(dnorm(x, log = TRUE) + (k - 1) * lx) * -expm1((k - 1) * log1p(-ratio))
  }
  if (w == 0) return(1)
  # The integrand peaks near x = -w/2 (smallest -w/2, largest +w/2) once w is large.
  centre <- -w / 2
  pieces <- c(-Inf, centre - 3, centre + 3, Inf)
  sum(sapply(1:3, function(i) integrate(f, pieces[i], pieces[i + 1], rel.tol = 1e-13, abs.tol = 0)$value))
}

studentized_upper <- function(q, k, df) {
  if (q == 0) return(1)
  if (!is.finite(df)) return(range_upper(q, k))
  # Over u = log S: density of S (from chi^2_df at x = df S^2) times P(range > q S).
  g <- function(u) sapply(u, function(ui) {
    x <- df * exp(2 * ui)
    log_density <- dchisq(x, df, log = TRUE) + log(2 * x)
    if (!is.finite(log_density)) return(0)
    exp(log_density) * range_upper(q * exp(ui), k)
  })
  lo <- min(log(3 / q), 0) - 40 / df - 3
  mode <- suppressWarnings(optimize(function(u) log(g(u)), c(lo, 1), maximum = TRUE)$maximum)
  pieces <- c(-Inf, mode + c(-8, -3, -1, 1, 3, 8) / sqrt(2 * df), Inf)
  sum(sapply(seq_len(length(pieces) - 1), function(i)
    integrate(g, pieces[i], pieces[i + 1], rel.tol = 1e-12, abs.tol = 0, subdivisions = 500)$value))
}

blocks <- list()
for (k in c(2, 3, 4, 5, 6, 10, 20)) {
  for (df in c(2, 3, 5, 10, 20, 42, 100, 476, 1000, Inf)) {
    q_max <- -sqrt(2) * qt(1e-12 / (2 * choose(k, 2)), df)
    # Denser where p is large: a third of the points have p above about 0.05.
    q <- c(0, q_max * (seq_len(30) / 30)^1.5)
    accurate <- if (k == 2) 2 * pt(-q / sqrt(2), df) else sapply(q, studentized_upper, k = k, df = df)
    blocks[[length(blocks) + 1]] <- list(
      k = k, df = if (is.finite(df)) df else "Inf", q = q,
      ptukey = ptukey(q, nmeans = k, df = df, lower.tail = FALSE), integrate = accurate)
  }
}
out <- list(
  generator = "tests/reference/generate_ptukey.R",
  r_version = R.version.string,
  blocks = blocks)
write_json(out, file.path(here, "ptukey.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
