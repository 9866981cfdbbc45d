package servicetest

import (
	"context"
	"fmt"

	"github.com/ostask/ostask/service"
)

// Auth is a service.Authenticator over a fixed table of tokens, for tests
// that need no Keystone (fuzzing, benchmarks of the handlers). Tests of
// authentication itself use service.Keystone against cloudsim.
type Auth map[string]service.Identity

func (a Auth) Validate(ctx context.Context, token string) (service.Identity, error) {
	id, ok := a[token]
	if !ok {
		return service.Identity{}, fmt.Errorf("%w: unknown token", service.ErrUnauthorized)
	}
	return id, nil
}

// Login accepts a token of the table only.
func (a Auth) Login(ctx context.Context, l service.Login) (string, service.Identity, error) {
	id, err := a.Validate(ctx, l.Token)
	return l.Token, id, err
}
