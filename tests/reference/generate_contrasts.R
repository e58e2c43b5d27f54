#!/usr/bin/env Rscript
## generate_contrasts.R -- lme4's contrasts= argument and R's default coding of ordered factors:
## for each contrast (contr.treatment, contr.sum, contr.helmert, contr.poly, contr.SAS, MASS's
## contr.sdif, a matrix without and with column names) the fixed-effect model matrix's column names
## and first rows, fixef, vcov, logLik, the REML criterion and predictions on new rows (without and
## with random effects), for lmer on cake and glmer on cbpp; an ordered factor (poly by default)
## in the fixed and the random part; and the names of the random-effects columns when contrasts=
## names a factor of a random term (lme4 codes random terms with the default contrasts). Also
## emmeans (Satterthwaite df) and lmerTest's type II and III anova of some fits, which the coding must not change.
## Writes contrasts.json next to this script. Usage: cd tests/reference && Rscript generate_contrasts.R
suppressPackageStartupMessages({ library(lme4); library(lmerTest); library(emmeans); library(MASS); library(jsonlite) })
here <- local({
  a <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(a) == 1) dirname(normalizePath(a)) else getwd()
})
cake <- read.csv(file.path(here, "data", "cake.csv.gz"), colClasses = c(replicate = "character", temperature = "character"))
cake$replicate <- factor(cake$replicate, levels = as.character(1:15))
cake$recipe <- factor(cake$recipe)
cake$temperature <- factor(cake$temperature)  # unordered: the Python dataset's
cbpp <- read.csv(file.path(here, "data", "cbpp.csv.gz"), colClasses = c(herd = "character", period = "character"))
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15))
cbpp$period <- factor(cbpp$period)

unnamed <- cbind(c(1, 0, -1), c(-1, 2, -1))
named <- unnamed; colnames(named) <- c("AvC", "BvAC")
cake_new <- data.frame(replicate = c("1", "2", "15", "7"), recipe = c("A", "B", "C", "B"),
                       temperature = c("175", "205", "225", "185"), temp = c(175, 205, 225, 185))
cbpp_new <- data.frame(herd = c("1", "5", "15"), period = c("1", "3", "4"), size = c(10, 20, 5), incidence = c(1, 2, 0))

summarise <- function(m, newdata, contrasts) {
  X <- getME(m, "X")
  out <- list(contrasts = contrasts, columns = colnames(X), x_head = unname(X[1:6, , drop = FALSE]),
              fixef = unname(fixef(m)), vcov = unname(as.matrix(vcov(m))), logLik = as.numeric(logLik(m)),
              predict_fixed = unname(predict(m, newdata, re.form = NA)),
              predict_full = unname(predict(m, newdata)))
  if (isLMM(m)) out$REMLcrit <- unname(REMLcrit(m))
  out
}
lmer_case <- function(formula, contrasts, label = contrasts) {
  m <- lme4::lmer(as.formula(formula), data = cake, contrasts = contrasts)
  c(list(formula = formula), summarise(m, cake_new, label))
}
inference <- function(m, spec) {
  means <- summary(emmeans(m, spec, lmer.df = "satterthwaite"))
  anova_table <- function(type) {
    table <- anova(as_lmerModLmerTest(m), type = type)
    list(terms = rownames(table), F = table[["F value"]], den_df = table$DenDF)
  }
  list(emmeans = list(spec = spec, levels = as.character(means[[spec]]), emmean = means$emmean, SE = means$SE, df = means$df),
       anova_type2 = anova_table(2), anova_type3 = anova_table(3))
}

lmer_cases <- list(
  treatment = lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = "contr.treatment")),
  sum = lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = "contr.sum")),
  helmert = lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = "contr.helmert")),
  poly = lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = "contr.poly")),
  SAS = lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = "contr.SAS")),
  sdif = lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = "contr.sdif")),
  matrix = c(lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = unnamed), list(recipe = "matrix")), matrix = list(unnamed)),
  named_matrix = c(lmer_case("angle ~ recipe * temp + (1 | replicate)", list(recipe = named), list(recipe = "named matrix")),
                   matrix = list(named), matrix_columns = list(colnames(named))),
  two_factors = lmer_case("angle ~ recipe * temperature + (1 | replicate)", list(recipe = "contr.sum", temperature = "contr.sdif"))
)
lmer_cases$two_factors <- c(lmer_cases$two_factors, inference(
  lme4::lmer(angle ~ recipe * temperature + (1 | replicate), cake, contrasts = list(recipe = "contr.sum", temperature = "contr.sdif")), "recipe"))

# R's cake has temperature as an ordered factor: polynomial contrasts without contrasts=.
ordered_cake <- cake
ordered_cake$temperature <- factor(ordered_cake$temperature, ordered = TRUE)
ordered_fit <- lme4::lmer(angle ~ recipe + temperature + (1 | replicate), ordered_cake)
ordered <- c(list(formula = "angle ~ recipe + temperature + (1 | replicate)", ordered = "temperature"),
             summarise(ordered_fit, cake_new, list()), inference(ordered_fit, "temperature"))

# Random-effects columns: contrasts= does not reach them; an ordered factor gets contr.poly there too.
random_names <- function(formula, frame, contrasts = NULL) {
  m <- suppressMessages(suppressWarnings(lme4::lmer(as.formula(formula), data = frame, contrasts = contrasts)))
  list(formula = formula, fixed = colnames(getME(m, "X")), random = colnames(ranef(m)$replicate))
}
ordered_recipe <- cake
ordered_recipe$recipe <- factor(ordered_recipe$recipe, ordered = TRUE)
random_terms <- list(
  contrasts = c(random_names("angle ~ recipe + (recipe | replicate)", cake, list(recipe = "contr.sum")),
                list(contrasts = list(recipe = "contr.sum"))),
  ordered = c(random_names("angle ~ recipe + (recipe | replicate)", ordered_recipe), list(ordered = "recipe"))
)

glmer_case <- function(contrasts) {
  m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, contrasts = contrasts)
  c(list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", family = "binomial"), summarise(m, cbpp_new, contrasts))
}
glmer_cases <- list(sum = glmer_case(list(period = "contr.sum")), sdif = glmer_case(list(period = "contr.sdif")))

out <- list(lmer = lmer_cases, ordered = ordered, random_terms = random_terms, glmer = glmer_cases,
            cake_new = cake_new, cbpp_new = cbpp_new,
            versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            MASS = as.character(packageVersion("MASS"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, matrix = "rowmajor"), file.path(here, "contrasts.json"))
