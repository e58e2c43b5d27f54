# The standard errors statsmodels reports for the variance parameters (of cov_re / scale), from
# lme4: the delta method on the inverse Hessian of the profiled deviance in theta (lme4:::deriv12).
# Their values are written into tests/test_statsmodels_compat.py (R 4.2.2, lme4 1.1).
library(lme4)
m <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)
dd <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE, devFunOnly = TRUE)
th <- getME(m, "theta")
h <- lme4:::deriv12(dd, th)$Hessian
print(sprintf("%.10g", 2 * th * sqrt(2 / h)))
m2 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
dd2 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, devFunOnly = TRUE)
t <- getME(m2, "theta")
H <- lme4:::deriv12(dd2, t)$Hessian
psi <- function(t) { L <- matrix(c(t[1], t[2], 0, t[3]), 2); P <- L %*% t(L); c(P[1,1], P[2,1], P[2,2]) }
J <- sapply(1:3, function(i) { e <- diag(3)[, i]; (psi(t + e) - psi(t - e)) / 2 })
print(sprintf("%.10g", sqrt(diag(J %*% (2 * solve(H)) %*% t(J)))))
