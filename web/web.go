package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// dist holds the built dashboard (scripts/build-web.sh writes it).
//
//go:embed all:dist
var dist embed.FS

const (
	// Files under assets/ have a hash of their content in their name
	// (vite's output), so a browser may keep them for good.
	immutableCache = "public, max-age=31536000, immutable"
	// Everything else (index.html above all) is checked each time: a new
	// binary must reach the browser at once.
	revalidateCache = "no-cache"

	// The page loads only its own scripts and styles and talks only to its
	// own origin (the API and its event streams).
	contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

// file is one embedded file, ready to serve.
type file struct {
	name      string
	data      []byte
	gz        []byte // gzip-compressed data, nil when it would not be smaller
	etag      string
	ctype     string
	immutable bool
}

var (
	loadOnce sync.Once
	files    map[string]*file
	loadErr  error
)

func load() (map[string]*file, error) {
	loadOnce.Do(func() {
		sub, err := fs.Sub(dist, "dist")
		if err != nil {
			loadErr = err
			return
		}
		m := map[string]*file{}
		loadErr = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(sub, p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			f := &file{
				name:      p,
				data:      data,
				etag:      `"` + hex.EncodeToString(sum[:12]) + `"`,
				ctype:     contentType(p),
				immutable: strings.HasPrefix(p, "assets/"),
			}
			if compressible(f.ctype) {
				f.gz = compress(data)
			}
			m["/"+p] = f
			return nil
		})
		files = m
	})
	return files, loadErr
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".map":
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || ctype == "image/svg+xml" || ctype == "application/json"
}

func compress(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(data)
	w.Close()
	if b.Len() >= len(data) {
		return nil
	}
	return b.Bytes()
}

// Handler serves the dashboard: the embedded files by path, and
// index.html for any other path, so that the application's own URLs
// (/tasks/ID, /resources/server/ID) load it. A missing static file (under
// /assets/, or named like one: .js, .css, .png, ...) is 404.
// Only GET and HEAD are allowed.
func Handler() http.Handler {
	m, err := load()
	if err != nil || m["/index.html"] == nil {
		// The binary was built without the dashboard: say so rather than
		// serve an empty page.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "ostask: this binary was built without the web dashboard (run scripts/build-web.sh)", http.StatusNotFound)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(m, w, r)
	})
}

func serve(m map[string]*file, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	f := m[p]
	if f == nil || p == "/index.html" {
		if p == "/assets" || strings.HasPrefix(p, "/assets/") || staticExt[path.Ext(p)] {
			http.NotFound(w, r)
			return
		}
		f = m["/index.html"]
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	if f.immutable {
		h.Set("Cache-Control", immutableCache)
	} else {
		h.Set("Cache-Control", revalidateCache)
	}
	if f.name == "index.html" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
	}
	data, etag := f.data, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			data = f.gz
			etag = strings.TrimSuffix(f.etag, `"`) + `-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	// ServeContent answers If-None-Match (304), HEAD and ranges; the zero
	// time leaves Last-Modified out (embedded files have none).
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(data))
}

// staticExt are the extensions of files a page asks for: a missing one is
// 404, not the application (whose ids might contain a dot).
var staticExt = map[string]bool{
	".js": true, ".mjs": true, ".css": true, ".map": true, ".svg": true, ".png": true, ".ico": true,
	".jpg": true, ".webp": true, ".woff": true, ".woff2": true, ".json": true, ".txt": true, ".webmanifest": true,
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (not
// with q=0).
func acceptsGzip(v string) bool {
	for _, part := range strings.Split(v, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
