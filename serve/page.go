package serve

import (
	"embed"
	"log"
	"net/http"
	"strconv"
)

// web holds the page served at /: plain HTML, CSS and JavaScript, no
// framework and nothing loaded from elsewhere.
//
//go:embed web/index.html web/app.js web/app.css
var web embed.FS

// pageFile is a file of the web page.
type pageFile struct {
	path  string // where it is served
	file  string // in web
	ctype string
}

var pageFiles = []pageFile{
	{"/", "web/index.html", "text/html; charset=utf-8"},
	{"/app.js", "web/app.js", "text/javascript; charset=utf-8"},
	{"/app.css", "web/app.css", "text/css; charset=utf-8"},
}

// contentSecurityPolicy lets the page load only its own files and show
// the images chosen by the user (blob: URLs).
const contentSecurityPolicy = "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page serves one file of the web page.
func (s *Server) page(f pageFile) http.HandlerFunc {
	body, err := web.ReadFile(f.file)
	if err != nil {
		panic("serve: the embedded page lacks " + f.file) // a broken build
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		if _, err := w.Write(body); err != nil {
			log.Printf("serve: writing %s: %v", f.path, err)
		}
	}
}
