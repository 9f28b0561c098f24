package tenant

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// OrgIDHeader carries the tenant, as in Loki.
const OrgIDHeader = "X-Scope-OrgID"

// ErrNoOrgID is returned when authentication is enabled and a request
// names no tenant.
var ErrNoOrgID = errors.New("no org id")

// MaxIDLength is Loki's limit on tenant ID length.
const MaxIDLength = 150

// ValidateID checks a tenant ID the way Loki does: at most 150 characters of
// letters, digits and !-_.*'(), and not "." or "..".
func ValidateID(id string) error {
	if id == "" {
		return ErrNoOrgID
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("tenant ID is too long: max %d characters", MaxIDLength)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("tenant ID is '.' or '..'")
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!-_.*'()", r):
		default:
			return fmt.Errorf("tenant ID '%s' contains unsupported character '%c'", id, r)
		}
	}
	return nil
}

// Resolver turns a request into tenant IDs.
type Resolver struct {
	AuthEnabled bool
}

// Read returns the tenants a read request addresses: "a|b" reads several.
// With authentication disabled it is always the single tenant "fake".
func (r Resolver) Read(req *http.Request) ([]string, error) {
	if !r.AuthEnabled {
		return []string{"fake"}, nil
	}
	h := req.Header.Get(OrgIDHeader)
	if h == "" {
		return nil, ErrNoOrgID
	}
	parts := strings.Split(h, "|")
	seen := map[string]bool{}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if err := ValidateID(p); err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// Write returns the single tenant a push addresses.
func (r Resolver) Write(req *http.Request) (string, error) {
	if !r.AuthEnabled {
		return "fake", nil
	}
	h := req.Header.Get(OrgIDHeader)
	if h == "" {
		return "", ErrNoOrgID
	}
	if strings.Contains(h, "|") {
		return "", fmt.Errorf("multiple org IDs present")
	}
	if err := ValidateID(h); err != nil {
		return "", err
	}
	return h, nil
}
