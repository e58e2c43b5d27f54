# R side of bench_inference.py: time lmerTest, lme4, emmeans and performance analyses of models
# fitted once (untimed). Only the analysis calls are timed: R startup, package loading, reading the
# CSVs and the fits are not.
# Usage: Rscript inference_r.R SLEEPSTUDY.csv CAKE.csv BUDGET_S MAX_RUNS MIN_RUNS ENOUGH_S BOOT_NSIM
# Each analysis is called once untimed (a warm-up that loads lazy namespaces), then repeated as
# fit_worker.RepeatPolicy repeats runs. Prints one JSON object on stdout.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
  library(performance)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
budget_s <- as.numeric(args[[3]])
max_runs <- as.integer(args[[4]])
min_runs <- as.integer(args[[5]])
enough_s <- as.numeric(args[[6]])
boot_nsim <- as.integer(args[[7]])

sleep <- read.csv(args[[1]], colClasses = c(Subject = "character"))
sleep$Subject <- factor(sleep$Subject)
cake <- read.csv(args[[2]], colClasses = c(replicate = "character", recipe = "character", temperature = "character"))
for (column in c("replicate", "recipe", "temperature")) cake[[column]] <- factor(cake[[column]])

# lme4's lmer (lmerTest's would compute Satterthwaite's derivatives during the fit); `tested` are
# the same fits converted once, their derivatives kept, as lmerTest's lmer returns them.
slopes <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleep, REML = TRUE)
slopes_tested <- as_lmerModLmerTest(slopes)
cake_fit <- lme4::lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake, REML = TRUE)
cake_tested <- as_lmerModLmerTest(cake_fit)

# Sys.time() has microsecond resolution; proc.time() only milliseconds.
now <- function() as.numeric(Sys.time())

time_runs <- function(analysis) {
  suppressWarnings(suppressMessages(analysis()))
  times <- numeric()
  repeat {
    start <- now()
    suppressWarnings(suppressMessages(analysis()))
    times <- c(times, now() - start)
    spent <- sum(times)
    if (length(times) >= max_runs ||
        (spent >= budget_s && (length(times) >= min_runs || spent >= enough_s))) break
  }
  times
}

# emmeans' default for lmer fits is Kenward-Roger; Satterthwaite is what mixedmodels computes.
recipe_pairs <- function(fit) pairs(emmeans(fit, ~recipe, lmer.df = "satterthwaite"))

analyses <- list(
  coef_table_first = function() summary(as_lmerModLmerTest(slopes)),
  coef_table_cached = function() summary(slopes_tested),
  anova_first = function() anova(as_lmerModLmerTest(slopes)),
  anova_cached = function() anova(slopes_tested),
  profile_confint = function() confint(slopes),
  bootstrap = function() bootMer(slopes, fixef, nsim = boot_nsim, seed = 1),
  ranova = function() ranova(slopes_tested),
  r2 = function() r2(slopes),
  icc = function() icc(slopes),
  emmeans_pairs_first = function() recipe_pairs(cake_fit),
  emmeans_pairs_cached = function() recipe_pairs(cake_tested),
  kr_coef_table = function() summary(slopes_tested, ddf = "Kenward-Roger"),
  kr_anova_cake = function() anova(cake_tested, ddf = "Kenward-Roger"),
  kr_emmeans_pairs_cake = function() pairs(emmeans(cake_fit, ~recipe, lmer.df = "kenward-roger"))
)

versions <- c(R = R.version.string, sapply(
  c("lme4", "lmerTest", "pbkrtest", "emmeans", "performance"),
  function(package) as.character(packageVersion(package))
))

# I() keeps one-element vectors as JSON arrays.
cat(toJSON(list(
  versions = as.list(versions),
  times = lapply(analyses, function(analysis) I(time_runs(analysis)))
), auto_unbox = TRUE, digits = NA))
