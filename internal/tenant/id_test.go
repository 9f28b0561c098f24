package tenant

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolver(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	ids, err := Resolver{}.Read(req)
	require.NoError(t, err)
	require.Equal(t, []string{"fake"}, ids)

	on := Resolver{AuthEnabled: true}
	_, err = on.Read(req)
	require.ErrorIs(t, err, ErrNoOrgID)
	req.Header.Set(OrgIDHeader, "a|b|a")
	ids, err = on.Read(req)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids)
	_, err = on.Write(req)
	require.Error(t, err)
	req.Header.Set(OrgIDHeader, "bad/id")
	_, err = on.Write(req)
	require.Error(t, err)
	req.Header.Set(OrgIDHeader, "team-1")
	id, err := on.Write(req)
	require.NoError(t, err)
	require.Equal(t, "team-1", id)
}
