package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"coop/host/internal/engine"
	"coop/host/internal/lock"
	"coop/host/internal/rules"
)

// Slot is a co-op's container in one of its two slots.
type Slot struct {
	Slot    string `json:"slot"`
	Image   string `json:"image"`
	Running bool   `json:"running"`
	// Since is, for the live slot, when its release was switched to (its record's time); for the
	// idle slot, or a live one with no record, when its container last started (RFC 3339), empty
	// when it never did.
	Since string `json:"since"`
	// Until is, for the idle slot kept running in its rollback window, when it is stopped (RFC 3339).
	Until string `json:"until,omitempty"`
}

// CoopStatus is what `status --coops` says of one co-op on this host: what serves, what is kept
// for an instant rollback, whether the live release answers its health path, who holds the lock,
// and the last release recorded.
type CoopStatus struct {
	Coop string `json:"coop"`
	Live *Slot  `json:"live"`
	Idle *Slot  `json:"idle"`
	// Healthy is the live release's answer to its health path from this host: true for 2xx, false
	// for anything else, null when there is no live release or no address to ask.
	Healthy *bool `json:"healthy"`
	// Lock is the holder of the co-op's lock (a release under way); empty when none.
	Lock string  `json:"lock"`
	Last *Record `json:"last"`
}

// StatusEngine is what Status needs of the engine.
type StatusEngine interface {
	StateEngine
	Inspect(ctx context.Context, name string) (engine.State, error)
}

// Coops are the co-ops that have a directory on this host (root/coops/ID, a valid id), sorted.
func Coops(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "coops"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && rules.CoopID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Status reads one co-op's status; probe asks a health URL (a GET with a short timeout).
func Status(ctx context.Context, eng StatusEngine, prx Proxy, id, dir string, probe func(url string) bool) (CoopStatus, error) {
	st, err := State(ctx, eng, prx, id, dir)
	if err != nil {
		return CoopStatus{Coop: id}, err
	}
	s := CoopStatus{Coop: id, Last: st.Last}
	if h, held := lock.Held(dir); held {
		s.Lock = h.String()
	}
	slot := func(name string) (*Slot, engine.State) {
		c, err := eng.Inspect(ctx, SlotName(id, name))
		if err != nil {
			return nil, engine.State{}
		}
		return &Slot{Slot: name, Image: c.Image, Running: c.Running, Since: c.StartedAt}, c
	}
	if st.Live == nil {
		return s, nil
	}
	var live engine.State
	s.Live, live = slot(st.Live.Slot)
	// A release serves from its switch, which its record dates; the container's last start is
	// later when the engine restarted it (a crash, a reboot) and says nothing of the release.
	if s.Live != nil && st.Last != nil && st.Last.Slot == s.Live.Slot && st.Last.ReleaseKey == live.Labels[LabelRelease] {
		s.Live.Since = st.Last.Time
	}
	s.Idle, _ = slot(otherSlot(st.Live.Slot))
	if w, open := ReadWindow(dir); open && s.Idle != nil && s.Idle.Running && w.Slot == SlotName(id, s.Idle.Slot) {
		s.Idle.Until = w.Until.UTC().Format(time.RFC3339)
	}
	if s.Live == nil || !s.Live.Running {
		return s, nil
	}
	if r, err := loadRelease(dir); err == nil {
		if ip := live.IPs[r.Network]; ip != "" {
			ok := probe(fmt.Sprintf("http://%s:%d%s", ip, r.Port, r.HealthPath))
			s.Healthy = &ok
		}
	}
	return s, nil
}

// ProbeHTTP is Status's probe: a GET answered 2xx within two seconds.
func ProbeHTTP(url string) bool {
	client := http.Client{Timeout: 2 * time.Second}
	res, err := client.Get(url)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 300
}
