//go:build race

package rules

// raceEnabled: the race detector makes sync.Pool (used by regexp) drop
// cached matchers, so allocation counts are meaningless under -race.
const raceEnabled = true
