package storage

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// KeyLastDataset is the settings key under which LastDataset keeps the last opened dataset.
const KeyLastDataset = "last_dataset_id"

// Setting returns the value stored under key and whether it exists.
func (db *DB) Setting(key string) (string, bool, error) {
	var v string
	err := db.sql.QueryRow(`SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, db.errf(err, "reading setting %q", key)
	}
	return v, true, nil
}

// SetSetting stores value under key, replacing any earlier value.
func (db *DB) SetSetting(key, value string) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, now())
		return err
	})
	if err != nil {
		return db.errf(err, "storing setting %q", key)
	}
	return nil
}

// DeleteSetting removes key; removing a missing key is not an error.
func (db *DB) DeleteSetting(key string) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM settings WHERE key = ?`, key)
		return err
	})
	if err != nil {
		return db.errf(err, "deleting setting %q", key)
	}
	return nil
}

// SettingJSON decodes the JSON value stored under key into v (a pointer, typically to a
// settings struct) and reports whether the key exists; v is untouched when it does not.
func (db *DB) SettingJSON(key string, v any) (bool, error) {
	s, ok, err := db.Setting(key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return true, fmt.Errorf("storage: %s: setting %q is not valid JSON for %T: %w", db.path, key, v, err)
	}
	return true, nil
}

// SetSettingJSON stores v encoded as JSON under key.
func (db *DB) SetSettingJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storage: %s: encoding setting %q: %w", db.path, key, err)
	}
	return db.SetSetting(key, string(b))
}

// LastDataset returns the id of the last opened dataset, if one was recorded and still exists.
func (db *DB) LastDataset() (int64, bool, error) {
	s, ok, err := db.Setting(KeyLastDataset)
	if err != nil || !ok {
		return 0, false, err
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("storage: %s: setting %q holds %q, not a dataset id", db.path, KeyLastDataset, s)
	}
	if _, err := db.DatasetByID(id); errors.Is(err, ErrNotFound) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// SetLastDataset records id as the last opened dataset.
func (db *DB) SetLastDataset(id int64) error {
	return db.SetSetting(KeyLastDataset, strconv.FormatInt(id, 10))
}

// KeyGenerationCacheMaxBytes is the settings key of the generation cache's size cap.
const KeyGenerationCacheMaxBytes = "generation_cache_max_bytes"

// DefaultGenerationCacheMaxBytes is the generation cache's size cap when none is set: 2 GiB.
const DefaultGenerationCacheMaxBytes int64 = 2 << 30

// GenerationCacheMaxBytes returns the size cap of the generation cache in bytes
// (DefaultGenerationCacheMaxBytes when none is set).
func (db *DB) GenerationCacheMaxBytes() (int64, error) {
	s, ok, err := db.Setting(KeyGenerationCacheMaxBytes)
	if err != nil || !ok {
		return DefaultGenerationCacheMaxBytes, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("storage: %s: setting %q holds %q, not a positive number of bytes", db.path, KeyGenerationCacheMaxBytes, s)
	}
	return n, nil
}

// SetGenerationCacheMaxBytes sets the size cap of the generation cache; n must be positive.
// It does not evict anything itself.
func (db *DB) SetGenerationCacheMaxBytes(n int64) error {
	if n <= 0 {
		return fmt.Errorf("storage: %s: generation cache size cap %d: must be a positive number of bytes", db.path, n)
	}
	return db.SetSetting(KeyGenerationCacheMaxBytes, strconv.FormatInt(n, 10))
}
