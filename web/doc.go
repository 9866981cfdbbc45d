// Package web is ostask's dashboard: a small single-page application
// (Preact, with dagre laying out flow graphs) whose built files are
// embedded in the binary, so that `ostask serve` needs no CDN, no node and
// no files beside it.
//
// The service mounts it at "/":
//
//	srv := service.New(service.Config{UI: web.Handler(), ...})
//
// The sources are in web/src; scripts/build-web.sh (npm ci, vite build)
// writes web/dist, which is committed, and CI checks that it matches a
// fresh build. The dashboard uses only the service's public API (/v1),
// with the session cookie that POST /v1/auth/session sets.
package web
