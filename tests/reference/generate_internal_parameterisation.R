# References for the shift and scale invariance of fits (issue 13, section 2): lme4's (and
# glmmTMB's, for the exact Laplace GLMM) fits of models whose random-slope covariate is centred,
# which every shifted or rescaled version of the same model must reproduce, and lme4's own fits
# of the shifted versions (which stop short of that optimum: documented, not a target).
# Run: Rscript generate_internal_parameterisation.R (in tests/reference/), ~10 s.
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite)})
sleep <- read.csv(gzfile("data/sleepstudy.csv.gz"), colClasses = c(Subject = "character"))
sleep$Subject <- factor(sleep$Subject)
grouse <- read.csv(gzfile("data/grouseticks.csv.gz"), colClasses = c(BROOD = "character", YEAR = "character",
                   INDEX = "character", LOCATION = "character"))
grouse$BROOD <- factor(grouse$BROOD); grouse$YEAR <- factor(grouse$YEAR)

summarise_lmer <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(logLik = as.numeric(logLik(m)), REML = isREML(m), fixef = as.list(fixef(m)),
       fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))), sigma = sigma(m),
       varcorr = lapply(seq_len(nrow(vc)), function(i) as.list(vc[i, ])),
       warnings = as.list(m@optinfo$conv$lme4$messages))
}
out <- list(R_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
            glmmTMB_version = as.character(packageVersion("glmmTMB")))
for (reml in c(TRUE, FALSE)) {
  key <- if (reml) "reml" else "ml"
  out$sleepstudy[[key]]$centred <- summarise_lmer(lmer(Reaction ~ Days + (Days | Subject), sleep, REML = reml))
  for (s in c(100, 2000)) {
    d <- transform(sleep, D = Days + s)
    out$sleepstudy[[key]][[paste0("lme4_shift_", s)]] <- summarise_lmer(
      suppressWarnings(lmer(Reaction ~ D + (D | Subject), d, REML = reml)))
  }
}
for (reml in c(TRUE, FALSE)) {
  key <- if (reml) "reml" else "ml"
  out$grouseticks_lmm[[key]]$centred <- summarise_lmer(
    lmer(log1p(TICKS) ~ YEAR + cHEIGHT + (1 + cHEIGHT | BROOD), grouse, REML = reml))
  out$grouseticks_lmm[[key]]$lme4_uncentred <- summarise_lmer(
    suppressWarnings(lmer(log1p(TICKS) ~ YEAR + HEIGHT + (1 + HEIGHT | BROOD), grouse, REML = reml)))
}
# The GLMM: Poisson counts with a random slope in the centred height, exact Laplace (glmmTMB).
g <- glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 + cHEIGHT | BROOD), grouse, family = poisson)
vc <- VarCorr(g)$cond$BROOD
out$grouseticks_poisson_slope <- list(
  formula = "TICKS ~ YEAR + cHEIGHT + (1 + cHEIGHT | BROOD)",
  logLik = as.numeric(logLik(g)), fixef = as.list(fixef(g)$cond),
  fixef_se = as.list(sqrt(diag(vcov(g)$cond))),
  sd = as.list(attr(vc, "stddev")), correlation = attr(vc, "correlation")[2, 1],
  convergence = g$fit$convergence, pdHess = g$sdr$pdHess)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), "internal_parameterisation.json")
