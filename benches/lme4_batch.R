# R side of bench_batch.py: the per-gene loops R users write, on the bench's CSV files.
#   lmer_refit:    fit the first gene with lmer(), every other gene with refit(m, y) (a fresh
#                  lmer() on the observed samples for a gene with missing values, which refit
#                  cannot take), lmerTest's Satterthwaite test of condition for each gene.
#   lmer_weighted: lmerTest::lmer(..., weights = w) per gene (refit() cannot change the weights
#                  and lmerTest cannot convert a refitted weighted fit, lme4 issue 678), weights
#                  divided by their mean as variancePartition's dream does.
#   glmer_nb:      glmer.nb(count ~ condition + (1 | donor) + offset(log_lib)) per gene.
#   glmer_poisson: glmer(count ~ condition + (1 | donor) + offset(log_lib), family = poisson).
# The loop stops after the gene during which BUDGET_S seconds were exceeded: its time is that of
# the genes fitted (n_fitted), which bench_batch.py extrapolates per gene. R startup, package
# loading and reading the CSVs are not in the loop time (read_s gives the reading).
# With CRITERION_AT_THETA = TRUE (lmer kinds), after the timed loop, each gene's REML criterion
# is evaluated again at the θ the loop returned, by lme4's own deviance function (untimed).
# Usage: Rscript lme4_batch.R SAMPLES.csv EXPR.csv WEIGHTS.csv|- KIND BUDGET_S OUT.json
#          CRITERION_AT_THETA
# Writes one JSON object to OUT.json.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
samples_path <- args[[1]]
expr_path <- args[[2]]
weights_path <- args[[3]]
kind <- args[[4]]
budget_s <- as.numeric(args[[5]])
out_path <- args[[6]]
criterion_at_theta <- as.logical(args[[7]])

now <- function() proc.time()[["elapsed"]]

# Read as users do: read.csv, the factor columns as text, then factor() (sorted levels).
read_start <- now()
factor_columns <- c("sample", "donor", "batch", "condition")
samples <- read.csv(samples_path, colClasses = c(sample = "character", donor = "character",
                                                 batch = "character", condition = "character"))
for (column in intersect(setdiff(factor_columns, "sample"), names(samples))) {
  samples[[column]] <- factor(samples[[column]])
}
expression <- as.matrix(read.csv(expr_path, row.names = 1, check.names = FALSE))[, samples$sample, drop = FALSE]
weights <- if (weights_path == "-") NULL else
  as.matrix(read.csv(weights_path, row.names = 1, check.names = FALSE))[, samples$sample, drop = FALSE]
read_s <- now() - read_start

lmm_formula <- y ~ condition + age + (1 | donor) + (1 | batch)
count_formula <- count ~ condition + (1 | donor) + offset(log_lib)
n_genes <- nrow(expression)

# A first call of each kind loads the optimisers' and lmerTest's namespaces: not timed.
invisible(suppressMessages(summary(lmerTest::lmer(Reaction ~ Days + (1 | Subject), sleepstudy))))
invisible(suppressMessages(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)))

quietly <- function(expr) suppressWarnings(suppressMessages(expr))
condition_row <- "conditiontreated"

criterion <- estimate <- p_value <- nb_size <- rep(NA_real_, n_genes)
theta <- matrix(NA_real_, n_genes, 0)
errors <- rep(NA_character_, n_genes)
d <- samples
first_fit <- NULL

fit_gene <- function(g) {
  y <- expression[g, ]
  if (kind == "lmer_refit") {
    observed <- !is.na(y)
    # lmerTest re-evaluates the model's call (lmer(lmm_formula, d)) to get the deviance
    # function: d must hold this gene's response, or its Satterthwaite test uses the first
    # gene's data.
    d$y <<- y
    if (!all(observed)) {
      d_observed <- d[observed, , drop = FALSE]
      fit <- quietly(lme4::lmer(lmm_formula, d_observed))
    } else if (is.null(first_fit)) {
      fit <- first_fit <<- quietly(lme4::lmer(lmm_formula, d))
    } else {
      fit <- quietly(refit(first_fit, y))
    }
    test <- summary(as_lmerModLmerTest(fit))$coefficients
    list(criterion = REMLcrit(fit), estimate = test[condition_row, "Estimate"],
         p = test[condition_row, "Pr(>|t|)"], theta = getME(fit, "theta"), size = NA_real_)
  } else if (kind == "lmer_weighted") {
    w <- weights[g, ]
    d$y <<- y
    d$w <<- w / mean(w)
    fit <- quietly(lmerTest::lmer(lmm_formula, d[!is.na(y), , drop = FALSE], weights = w))
    test <- summary(fit)$coefficients
    list(criterion = REMLcrit(fit), estimate = test[condition_row, "Estimate"],
         p = test[condition_row, "Pr(>|t|)"], theta = getME(fit, "theta"), size = NA_real_)
  } else {
    d$count <<- y
    fit <- if (kind == "glmer_nb") {
      quietly(glmer.nb(count_formula, data = d))
    } else {
      quietly(glmer(count_formula, data = d, family = poisson))
    }
    test <- summary(fit)$coefficients
    list(criterion = -2 * as.numeric(logLik(fit)), estimate = test[condition_row, "Estimate"],
         p = test[condition_row, "Pr(>|z|)"], theta = getME(fit, "theta"),
         size = if (kind == "glmer_nb") getME(fit, "glmer.nb.theta") else NA_real_)
  }
}

loop_start <- now()
n_fitted <- 0
for (g in seq_len(n_genes)) {
  outcome <- tryCatch(fit_gene(g), error = function(e) conditionMessage(e))
  if (is.character(outcome)) {
    errors[g] <- outcome
  } else {
    if (ncol(theta) == 0) theta <- matrix(NA_real_, n_genes, length(outcome$theta))
    criterion[g] <- outcome$criterion
    estimate[g] <- outcome$estimate
    p_value[g] <- outcome$p
    theta[g, ] <- outcome$theta
    nb_size[g] <- outcome$size
  }
  n_fitted <- g
  if (now() - loop_start > budget_s) break
}
loop_s <- now() - loop_start

# Untimed: each gene's REML criterion at the θ the loop returned, from lme4's deviance function
# (lme4 1.1-31's REMLcrit() of a refit() result is not the criterion at its own θ).
criterion_at <- rep(NA_real_, n_genes)
if (criterion_at_theta && kind %in% c("lmer_refit", "lmer_weighted")) {
  for (g in seq_len(n_fitted)) {
    if (is.na(criterion[g])) next
    y <- expression[g, ]
    d$y <- y
    if (!is.null(weights)) d$w <- weights[g, ] / mean(weights[g, ])
    observed <- !is.na(y)
    deviance_function <- if (is.null(weights)) {
      lme4::lmer(lmm_formula, d[observed, , drop = FALSE], devFunOnly = TRUE)
    } else {
      lme4::lmer(lmm_formula, d[observed, , drop = FALSE], weights = w, devFunOnly = TRUE)
    }
    criterion_at[g] <- deviance_function(theta[g, ])
  }
}

fitted <- seq_len(n_fitted)
# NA travels as JSON null; I() keeps one-element vectors as arrays.
writeLines(toJSON(list(
  genes = I(rownames(expression)[fitted]),
  n_genes = n_genes,
  n_fitted = n_fitted,
  loop_s = loop_s,
  read_s = read_s,
  criterion = I(criterion[fitted]),
  criterion_at_theta = I(criterion_at[fitted]),
  estimate = I(estimate[fitted]),
  p_value = I(p_value[fitted]),
  theta = theta[fitted, , drop = FALSE],
  nb_size = I(nb_size[fitted]),
  errors = I(errors[fitted]),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")))
), auto_unbox = TRUE, digits = NA, na = "null"), out_path)
