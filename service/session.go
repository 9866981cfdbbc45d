package service

import (
	"errors"
	"net/http"
	"time"

	"github.com/ostask/ostask/jobs"
)

// login: POST /v1/auth/session. It logs in with Keystone (a password, or
// a token the caller holds), sets the session cookie and answers whoami.
// The token itself is never in the body.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var l Login
	if err := decodeJSON(w, r, &l); err != nil {
		return err
	}
	if l.Token == "" {
		var fields []jobs.FieldError
		for _, f := range []struct{ name, v string }{{"username", l.Username}, {"password", l.Password}, {"project", l.Project}} {
			if f.v == "" {
				fields = append(fields, jobs.FieldError{Field: f.name, Message: "is required (or give a token)"})
			}
		}
		if fields != nil {
			return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid login", Fields: fields}
		}
	} else if l.Username != "" || l.Password != "" || l.Project != "" || l.Domain != "" {
		return badRequest("token", "give either a token or username, password and project")
	}
	tok, id, err := s.cfg.Auth.Login(r.Context(), l)
	if err != nil {
		return err
	}
	setSession(w, r, tok, id.ExpiresAt)
	writeJSON(w, http.StatusOK, id)
	return nil
}

// whoami: GET /v1/auth/session. With Config.AutoLogin (serve --sim), a
// caller without a valid session is logged in as that user.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request, _ *caller) error {
	c, err := s.authenticate(r)
	if err == nil {
		writeJSON(w, http.StatusOK, c.Identity)
		return nil
	}
	if s.cfg.AutoLogin == nil || r.Header.Get(TokenHeader) != "" || !errors.Is(err, ErrUnauthorized) {
		return err
	}
	tok, id, err := s.cfg.Auth.Login(r.Context(), *s.cfg.AutoLogin)
	if err != nil {
		return err
	}
	setSession(w, r, tok, id.ExpiresAt)
	writeJSON(w, http.StatusOK, id)
	return nil
}

// logout: DELETE /v1/auth/session clears the cookie (the token stays
// valid in Keystone until it expires, as any token another client holds).
func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if tok := requestToken(r); tok != "" {
		if f, ok := s.cfg.Auth.(interface{ Forget(string) }); ok {
			f.Forget(tok)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func setSession(w http.ResponseWriter, r *http.Request, tok string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: tok, Path: "/", Expires: expires, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}
