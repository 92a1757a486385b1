package balance

// HealthGoroutines is how many active-check goroutines are running.
func (p *Pool) HealthGoroutines() int64 { return p.running.Load() }
