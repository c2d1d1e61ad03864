package studio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// GenerationCacheMaxBytes returns the size cap of the generation cache
// (<dataDir>/generations), 2 GiB unless set.
func (s *Studio) GenerationCacheMaxBytes() (int64, error) { return s.db.GenerationCacheMaxBytes() }

// SetGenerationCacheMaxBytes sets the size cap of the generation cache and
// evicts least recently used entries at once until the cache fits it.
func (s *Studio) SetGenerationCacheMaxBytes(n int64) error {
	if err := s.db.SetGenerationCacheMaxBytes(n); err != nil {
		return err
	}
	_, err := s.TrimGenerationCache("")
	return err
}

// TrimGenerationCache evicts least recently used generation cache entries
// until the PNGs the cache holds under <dataDir>/generations add up to no
// more than the cap, never evicting the entry keep (the one just made; ""
// keeps none). Evicting deletes the cached PNG and its cache row; the
// history rows of generations stay, and files outside generations/ (the
// user's own output copies) are never touched nor counted. Entries whose
// file is already gone are dropped. It returns how many entries it evicted.
func (s *Studio) TrimGenerationCache(keep string) (int, error) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	limit, err := s.db.GenerationCacheMaxBytes()
	if err != nil {
		return 0, err
	}
	entries, err := s.db.CacheEntries() // least recently used first
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(s.dataDir, GenerationsDir)
	sizes := make([]int64, len(entries))
	owned := make([]bool, len(entries))
	var total int64
	for i, e := range entries {
		p := filepath.Clean(e.OutputPath)
		if filepath.Dir(p) != dir {
			continue // not a file of the cache: not ours to count or delete
		}
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if e.Key != keep {
				if err := s.db.CacheDelete(e.Key); err != nil {
					return 0, err
				}
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("generation cache %s: %w", p, err)
		}
		owned[i], sizes[i] = true, st.Size()
		total += st.Size()
	}
	evicted := 0
	for i, e := range entries {
		if total <= limit {
			break
		}
		if !owned[i] || e.Key == keep {
			continue
		}
		if err := os.Remove(e.OutputPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return evicted, fmt.Errorf("evicting %s from the generation cache: %w", e.OutputPath, err)
		}
		if err := s.db.CacheDelete(e.Key); err != nil {
			return evicted, err
		}
		total -= sizes[i]
		evicted++
	}
	return evicted, nil
}
