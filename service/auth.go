package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostask/ostask/ops"
)

// Identity is who a token speaks for: the whoami of GET /v1/auth/session.
type Identity struct {
	User      Ref       `json:"user"`
	Project   Ref       `json:"project"`
	Roles     []string  `json:"roles"`
	Admin     bool      `json:"admin"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Ref names a Keystone user or project.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Login is a Keystone password login, the body of POST /v1/auth/session.
// Project is a project's name or id; Domain (of user and project) is
// "Default" when empty. Token, instead of the rest, logs in with a token
// the caller already holds.
type Login struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Project  string `json:"project,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Token    string `json:"token,omitempty"`
}

// Authenticator validates callers' tokens and logs users in. Keystone
// is the one the service uses; errors are ErrUnauthorized (the token or
// the login is refused) or ErrUnavailable (no verdict).
type Authenticator interface {
	Validate(ctx context.Context, token string) (Identity, error)
	Login(ctx context.Context, l Login) (token string, id Identity, err error)
}

// AdminRole is the Keystone role that sees every project's tasks and the
// admin-only details of errors.
const AdminRole = "admin"

// DefaultMaxCachedTokens bounds Keystone's cache of validated tokens.
const DefaultMaxCachedTokens = 10000

// DefaultTokenCacheTime is how long a validated token is served from the
// cache before Keystone is asked again (keystonemiddleware's
// token_cache_time): a revoked token stops working within it.
const DefaultTokenCacheTime = 5 * time.Minute

// KeystoneConfig configures a Keystone authenticator.
type KeystoneConfig struct {
	// Auth is the service's own login, whose token validates callers'
	// (GET /v3/auth/tokens with X-Subject-Token): Keystone's policy asks
	// for the admin or service role.
	Auth ops.Auth
	// MaxCached bounds the validated tokens kept (0:
	// DefaultMaxCachedTokens).
	MaxCached int
	// CacheFor bounds how long a validated token is served from the
	// cache, never past its expiry (0: DefaultTokenCacheTime; negative:
	// until it expires, so a revoked token works until then).
	CacheFor time.Duration
	// Now is the clock of the cache (nil: time.Now).
	Now func() time.Time
	// Registerer receives the cache's metrics (nil: none).
	Registerer prometheus.Registerer
}

// Keystone validates tokens against a cloud's Keystone and caches each
// valid one for KeystoneConfig.CacheFor, never past its expiry. Only a
// hash of a token is kept.
type Keystone struct {
	identity *gophercloud.ServiceClient // with the service's token
	anon     *gophercloud.ServiceClient // without a token, for logins
	now      func() time.Time
	max      int
	cacheFor time.Duration // <= 0: until expiry

	mu    sync.Mutex
	cache map[[32]byte]cachedToken

	lookups *prometheus.CounterVec
}

// NewKeystone logs the service in to cfg.Auth's Keystone.
func NewKeystone(ctx context.Context, cfg KeystoneConfig) (*Keystone, error) {
	opts := cfg.Auth.Options
	opts.AllowReauth = true
	pc, err := openstack.NewClient(opts.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("service: keystone %q: %w", opts.IdentityEndpoint, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Auth.TLS != nil {
		tr.TLSClientConfig = cfg.Auth.TLS
	}
	pc.HTTPClient = http.Client{Transport: tr, Timeout: 30 * time.Second}
	if err := openstack.Authenticate(ctx, pc, opts); err != nil {
		return nil, fmt.Errorf("service: log in to keystone at %s: %w", opts.IdentityEndpoint, err)
	}
	identity, err := openstack.NewIdentityV3(pc, cfg.Auth.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("service: identity endpoint: %w", err)
	}
	apc, err := openstack.NewClient(opts.IdentityEndpoint)
	if err != nil {
		return nil, err
	}
	apc.HTTPClient = pc.HTTPClient
	anon := &gophercloud.ServiceClient{ProviderClient: apc, Endpoint: identity.Endpoint, Type: "identity"}
	k := &Keystone{identity: identity, anon: anon, now: cfg.Now, max: cfg.MaxCached, cacheFor: cfg.CacheFor, cache: map[[32]byte]cachedToken{},
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostask_service_token_lookups_total",
			Help: "Tokens looked up, by outcome: cached, valid (asked Keystone), invalid, error."}, []string{"outcome"})}
	if k.now == nil {
		k.now = time.Now
	}
	if k.max <= 0 {
		k.max = DefaultMaxCachedTokens
	}
	if k.cacheFor == 0 {
		k.cacheFor = DefaultTokenCacheTime
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(k.lookups); err != nil {
			return nil, fmt.Errorf("service: register metrics: %w", err)
		}
	}
	return k, nil
}

// Validate returns the identity of token, from the cache while it is
// valid, else from Keystone.
func (k *Keystone) Validate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	h := sha256.Sum256([]byte(token))
	now := k.now()
	k.mu.Lock()
	c, ok := k.cache[h]
	k.mu.Unlock()
	if ok && now.Before(c.until) {
		k.lookups.WithLabelValues("cached").Inc()
		return c.id, nil
	}
	id, err := k.fromKeystone(tokens.Get(ctx, k.identity, token).Result)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			k.lookups.WithLabelValues("invalid").Inc()
		} else {
			k.lookups.WithLabelValues("error").Inc()
		}
		return Identity{}, err
	}
	k.lookups.WithLabelValues("valid").Inc()
	k.remember(h, id)
	return id, nil
}

// Forget drops token from the cache (after a log-out).
func (k *Keystone) Forget(token string) {
	h := sha256.Sum256([]byte(token))
	k.mu.Lock()
	delete(k.cache, h)
	k.mu.Unlock()
}

// cachedToken is a validated token's identity, served until until.
type cachedToken struct {
	id    Identity
	until time.Time
}

func (k *Keystone) remember(h [32]byte, id Identity) {
	now := k.now()
	until := id.ExpiresAt
	if k.cacheFor > 0 && now.Add(k.cacheFor).Before(until) {
		until = now.Add(k.cacheFor)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.cache) >= k.max {
		for key, v := range k.cache {
			if !now.Before(v.until) {
				delete(k.cache, key)
			}
		}
		// Still full of valid tokens: forget some (map order is random);
		// their holders are asked about again.
		for key := range k.cache {
			if len(k.cache) < k.max {
				break
			}
			delete(k.cache, key)
		}
	}
	k.cache[h] = cachedToken{id: id, until: until}
}

var projectID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Login logs a user in with a password (or checks a token) and returns
// the token and its identity.
func (k *Keystone) Login(ctx context.Context, l Login) (string, Identity, error) {
	if l.Token != "" {
		id, err := k.Validate(ctx, l.Token)
		return l.Token, id, err
	}
	domain := l.Domain
	if domain == "" {
		domain = "Default"
	}
	opts := &tokens.AuthOptions{Username: l.Username, Password: l.Password, DomainName: domain}
	if projectID.MatchString(l.Project) {
		opts.Scope = tokens.Scope{ProjectID: l.Project}
	} else {
		opts.Scope = tokens.Scope{ProjectName: l.Project, DomainName: domain}
	}
	res := tokens.Create(ctx, k.anon, opts)
	id, err := k.fromKeystone(res.Result)
	if err != nil {
		return "", Identity{}, err
	}
	tok, err := res.ExtractTokenID()
	if err != nil {
		return "", Identity{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	k.remember(sha256.Sum256([]byte(tok)), id)
	return tok, id, nil
}

// fromKeystone reads a token body: Keystone's 401 or 404 refuse the
// token; a token without a project cannot own tasks.
func (k *Keystone) fromKeystone(r gophercloud.Result) (Identity, error) {
	if r.Err != nil {
		if gophercloud.ResponseCodeIs(r.Err, http.StatusNotFound) || gophercloud.ResponseCodeIs(r.Err, http.StatusUnauthorized) ||
			gophercloud.ResponseCodeIs(r.Err, http.StatusBadRequest) {
			return Identity{}, fmt.Errorf("%w: keystone refused the token or login", ErrUnauthorized)
		}
		if gophercloud.ResponseCodeIs(r.Err, http.StatusForbidden) {
			return Identity{}, fmt.Errorf("%w: keystone does not let the service's credentials validate others' tokens "+
				"(they need the admin or service role)", ErrUnavailable)
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrUnavailable, redactErr(r.Err))
	}
	var body struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
			User      Ref       `json:"user"`
			Project   *Ref      `json:"project"`
			Roles     []Ref     `json:"roles"`
		} `json:"token"`
	}
	if err := r.ExtractInto(&body); err != nil {
		return Identity{}, fmt.Errorf("%w: unreadable token body: %v", ErrUnavailable, err)
	}
	t := body.Token
	if t.Project == nil || t.Project.ID == "" {
		return Identity{}, fmt.Errorf("%w: the token is not scoped to a project", ErrUnauthorized)
	}
	id := Identity{User: t.User, Project: *t.Project, ExpiresAt: t.ExpiresAt, Roles: []string{}}
	for _, r := range t.Roles {
		id.Roles = append(id.Roles, r.Name)
		if r.Name == AdminRole {
			id.Admin = true
		}
	}
	if !k.now().Before(id.ExpiresAt) {
		return Identity{}, fmt.Errorf("%w: the token expired", ErrUnauthorized)
	}
	return id, nil
}

// redactErr keeps a Keystone error's status, never its body (which may
// echo the subject token: "Could not find token: ...").
func redactErr(err error) error {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return fmt.Errorf("keystone answered %d to %s %s", ue.Actual, ue.Method, ue.URL)
	}
	return err
}
