// Package e2e holds the dashboard's browser tests: Debian's chromium,
// driven by chromedp, against a real `ostask serve --sim` built from this
// repository. They are skipped when chromium is missing, and fail then
// under CI=true. OSTASK_SCREENSHOTS=DIR keeps their screenshots.
package e2e
