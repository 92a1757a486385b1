//go:build !race

package h3test

const raceEnabled = false
