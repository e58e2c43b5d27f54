## batch_data.R -- what generate_batch_unweighted.R, generate_batch_kenward_roger.R and
## generate_batch_contrasts.R share (each sources it): the packages, batch/'s files, and the loop
## over the genes of batch/expression.csv, each fitted as generate_batch.R fits it:
##   lme4::lmer(y ~ condition + age + (1 | donor) + (1 | batch), REML = TRUE) on samples.csv with
##   y = the gene's row, NaN samples dropped, and dream's weights w / mean(w) (mean over all the
##   gene's samples) as the column w_scaled.
## The constant gene G005 is left out (lme4 returns optimizer noise for it; see results.json).
## pbkrtest is not loaded here but by the Kenward-Roger script alone, as when the references were
## made: lme4's fits move in the 9th-11th digit with the process's memory layout (loading one
## more package is enough), so each script loads what it loaded then.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(jsonlite)
})
lmer <- lme4::lmer
# Each script writes the formula literally in its lmer() calls: lmerTest re-evaluates a model's call
# in its formula's environment, which must be the fitting function's, where `data` is the gene's.
batch_formula <- "y ~ condition + age + (1 | donor) + (1 | batch)"
dir <- file.path(script_dir, "batch")
samples <- read.csv(file.path(dir, "samples.csv"), stringsAsFactors = TRUE)
expression <- read.csv(file.path(dir, "expression.csv"), check.names = FALSE)
weights <- read.csv(file.path(dir, "weights.csv"), check.names = FALSE)
stopifnot(identical(expression$gene, weights$gene))

quiet <- function(expr) suppressWarnings(suppressMessages(expr))

## fit_gene(name, data) for every gene but G005, in file order; the list of what it returns.
for_each_gene <- function(fit_gene) {
  genes <- list()
  for (g in seq_len(nrow(expression))) {
    name <- expression$gene[g]
    if (name == "G005") next
    data <- samples
    data$y <- as.numeric(expression[g, -1])
    w <- as.numeric(weights[g, -1])
    data$w_scaled <- w / mean(w)
    genes[[length(genes) + 1]] <- fit_gene(name, data[!is.na(data$y), ])
  }
  genes
}

## The JSON file batch/<file>: what it holds, the formula, `extra` fields, the versions of R and of
## `packages`, and the genes.
write_batch_json <- function(file, what, packages, genes, extra = list()) {
  versions <- c(list(R = R.version.string), lapply(setNames(packages, packages), function(p) as.character(packageVersion(p))))
  out <- c(list(what = what, formula = batch_formula), extra, list(versions = versions, genes = genes))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), null = "null", na = "null"), file.path(dir, file))
}
