package compactor

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/storage/block"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

func TestPlanner(t *testing.T) {
	h := int64(time.Hour)
	day := t0.UnixNano()
	n := 0
	meta := func(tenant string, winStartH, winLenH int64, compressed int64) block.Meta {
		n++
		id := ulid.MustNew(uint64(n), strings.NewReader(strings.Repeat("x", 16)))
		min := day + winStartH*h
		return block.Meta{
			ULID: id, Tenant: tenant, MinTime: min, MaxTime: min + winLenH*h,
			Window:     block.Window{MinTime: min, MaxTime: min + winLenH*h},
			Stats:      block.Stats{CompressedBytes: compressed},
			Compaction: block.Compaction{Level: 1, Sources: []ulid.ULID{id}},
		}
	}
	p := Planner{SmallRange: 24 * time.Hour, SmallMaxBytes: 100}
	// f plans metas at nowH hours after t0 and renders the groups as
	// "tenant:[startH,endH):blocks".
	f := func(nowH int64, metas []block.Meta, want ...string) {
		t.Helper()
		var got []string
		for _, g := range p.Plan(metas, t0.Add(time.Duration(nowH)*time.Hour)) {
			got = append(got, fmt.Sprintf("%s:[%d,%d):%d", g.Tenant, (g.Window.Min-day)/h, (g.Window.Max-day)/h, len(g.Blocks)))
		}
		require.Equal(t, want, got)
	}

	f(10, nil)
	// Rule 1: same tenant and window, window over.
	f(10, []block.Meta{meta("a", 6, 2, 1000), meta("a", 6, 2, 1000)}, "a:[6,8):2")
	f(10, []block.Meta{meta("a", 6, 2, 1000), meta("a", 6, 2, 1000), meta("a", 6, 2, 1000)}, "a:[6,8):3")
	// The current window is left alone.
	f(7, []block.Meta{meta("a", 6, 2, 1000), meta("a", 6, 2, 1000)})
	// Different tenants never merge.
	f(10, []block.Meta{meta("a", 6, 2, 1000), meta("b", 6, 2, 1000)})
	// Rule 2: small blocks of different windows in one ended day.
	f(30, []block.Meta{meta("a", 0, 2, 10), meta("a", 6, 2, 10), meta("a", 22, 2, 10)}, "a:[0,24):3")
	// ... not when they are too big together,
	f(30, []block.Meta{meta("a", 0, 2, 60), meta("a", 6, 2, 60)})
	// ... not before the day is over,
	f(20, []block.Meta{meta("a", 0, 2, 10), meta("a", 6, 2, 10)})
	// ... not for a single block,
	f(30, []block.Meta{meta("a", 0, 2, 10), meta("a", 24, 2, 10)})
	// ... but a late block joins an already merged day.
	f(50, []block.Meta{meta("a", 0, 24, 50), meta("a", 4, 2, 10)}, "a:[0,24):2")
	// A day with a rule 1 merge waits for it.
	f(30, []block.Meta{meta("a", 0, 2, 10), meta("a", 0, 2, 10), meta("a", 6, 2, 10)}, "a:[0,2):2")
	// Windows that do not fit in one range are not merged across windows.
	f(100, []block.Meta{meta("a", 0, 48, 10), meta("a", 48, 48, 10)})
	// Groups are sorted by tenant and window.
	f(30, []block.Meta{meta("b", 2, 2, 1000), meta("b", 2, 2, 1000), meta("a", 4, 2, 1000), meta("a", 4, 2, 1000), meta("a", 2, 2, 1000), meta("a", 2, 2, 1000)},
		"a:[2,4):2", "a:[4,6):2", "b:[2,4):2")

	// Rule 2 disabled.
	p.SmallRange = 0
	f(30, []block.Meta{meta("a", 0, 2, 10), meta("a", 6, 2, 10)})
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	require.Equal(t, units.Duration(10*time.Minute), c.CompactionInterval)
	require.Equal(t, units.Duration(2*time.Hour), c.RetentionDeleteDelay)
	require.False(t, c.RetentionEnabled)
	require.Equal(t, units.ByteSize(1536<<10), c.ChunkTargetSize)

	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var c2 Config
	c2.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-compactor.retention-enabled", "-compactor.compaction-interval=5m", "-compactor.chunk-encoding=snappy"}))
	require.True(t, c2.RetentionEnabled)
	require.Equal(t, units.Duration(5*time.Minute), c2.CompactionInterval)
	require.NoError(t, c2.Validate())

	c3 := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader("working_directory: /tmp/x\ncompaction_interval: 1h\nretention_enabled: true\nretention_delete_delay: 30m\napply_retention_interval: 2h\nchunk_target_size: 2MB\n"))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c3))
	require.Equal(t, "/tmp/x", c3.WorkingDirectory)
	require.Equal(t, units.Duration(time.Hour), c3.CompactionInterval)
	require.Equal(t, units.Duration(30*time.Minute), c3.RetentionDeleteDelay)
	require.Equal(t, units.Duration(2*time.Hour), c3.ApplyRetentionInterval)
	require.True(t, c3.RetentionEnabled)
	require.NoError(t, c3.Validate())

	f := func(mutate func(*Config)) {
		t.Helper()
		c := DefaultConfig()
		mutate(&c)
		require.Error(t, c.Validate())
	}
	f(func(c *Config) { c.CompactionInterval = 0 })
	f(func(c *Config) { c.ChunkEncoding = "brotli" })
	f(func(c *Config) { c.ChunkTargetSize = 0 })
	f(func(c *Config) { c.RetentionDeleteDelay = -1 })
	f(func(c *Config) { c.ApplyRetentionInterval = -1 })
}
