package app

import (
	"context"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/api/loki"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
)

// The API serves /index/volume through the store's optional Volume.
var _ loki.VolumeStore = (*lateStore)(nil)

func (s *lateStore) Volume(ctx context.Context, t string, ms []*model.Matcher, r model.TimeRange, step time.Duration) ([]storage.StreamVolume, error) {
	if db := s.db.Load(); db != nil {
		return db.Volume(ctx, t, ms, r, step)
	}
	return nil, errNotReady
}
