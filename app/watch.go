package app

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce gathers the several events of one save (truncate and
// write, or an editor's rename dance, or a Kubernetes ConfigMap's
// symlink swap) into one reload.
const watchDebounce = 250 * time.Millisecond

// watchConfig reloads the config file when it changes, until ctx ends
// (gateway run -watch). It watches the file's directory, not the file,
// so that a file replaced by rename or a ConfigMap update (which swaps
// the ..data symlink) is still seen.
// Watch reloads the config file whenever it changes, until ctx ends
// (see watchConfig).
func (a *App) Watch(ctx context.Context) error { return a.watchConfig(ctx, a.reload.path) }

func (a *App) watchConfig(ctx context.Context, path string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return err
	}
	name := filepath.Base(path)
	go func() {
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if base := filepath.Base(ev.Name); base != name && base != "..data" {
					continue
				}
				if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Rename) {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(watchDebounce)
				} else {
					timer.Reset(watchDebounce)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				a.log.Warn("config watch", "err", err)
			case <-fire:
				fire = nil
				a.log.Info("config file changed; reloading", "config", path)
				_ = a.reloadSignal()
			}
		}
	}()
	return nil
}
