package nemesis

import (
	"strings"
	"testing"
	"time"
)

func TestPlanHalfKillsAndEveryKind(t *testing.T) {
	for _, seed := range []uint64{1, 2, 99} {
		c := Config{Rounds: 40, Seed: seed}
		plan := Plan(c, []string{"pg1", "pg2"}, []string{"A", "B"})
		if len(plan) != 40 {
			t.Fatalf("seed %d: %d faults, want 40", seed, len(plan))
		}
		n := map[Kind]int{}
		for _, f := range plan {
			n[f.Kind]++
			switch f.Kind {
			case CrashPostgres, CutPostgres:
				if f.Target != "pg1" && f.Target != "pg2" {
					t.Errorf("seed %d: %v targets no Postgres", seed, f)
				}
			case CutClient:
				if f.Target != "A" && f.Target != "B" {
					t.Errorf("seed %d: %v targets no client", seed, f)
				}
			}
		}
		if n[KillEngine] < 20 {
			t.Errorf("seed %d: %d kills, want >= 20", seed, n[KillEngine])
		}
		for _, k := range Kinds {
			if n[k] < 5 {
				t.Errorf("seed %d: %s %d times in 40 rounds, want >= 5", seed, k, n[k])
			}
		}
	}
	// The short run has every kind, the engine killed once.
	n := map[Kind]int{}
	for _, f := range Plan(Config{Rounds: DefaultRounds, Seed: DefaultSeed}, []string{"pg1"}, []string{"A"}) {
		n[f.Kind]++
	}
	for _, k := range Kinds {
		if n[k] != 1 {
			t.Errorf("the default plan has %s %d times, want once", k, n[k])
		}
	}
}

func TestPlanIsReplayable(t *testing.T) {
	c := Config{Rounds: 30, Seed: 7}
	a := Plan(c, []string{"pg1", "pg2"}, []string{"A", "B"})
	b := Plan(c, []string{"pg1", "pg2"}, []string{"A", "B"})
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("round %d: %v then %v for the same seed", i, a[i], b[i])
		}
	}
	c.Seed = 8
	d := Plan(c, []string{"pg1", "pg2"}, []string{"A", "B"})
	same := true
	for i := range a {
		same = same && a[i] == d[i]
	}
	if same {
		t.Error("seeds 7 and 8 drew the same plan")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.Rounds != DefaultRounds || c.Seed != DefaultSeed || c.Step != DefaultStep || c.Hold != DefaultHold {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = ConfigFromEnv(env(map[string]string{"NEMESIS_ROUNDS": "40", "NEMESIS_SEED": "12", "NEMESIS_STEP": "5s", "NEMESIS_HOLD": "500ms"}))
	if err != nil || c.Rounds != 40 || c.Seed != 12 || c.Step != 5*time.Second || c.Hold != 500*time.Millisecond {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for k, v := range map[string]string{"NEMESIS_ROUNDS": "0", "NEMESIS_SEED": "-1", "NEMESIS_STEP": "1ns", "NEMESIS_HOLD": "x"} {
		if _, err := ConfigFromEnv(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v, want one naming it", k, v, err)
		}
	}
}
