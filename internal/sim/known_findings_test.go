package sim

import "testing"

func TestClassify25NamesTheItem(t *testing.T) {
	for _, tc := range []struct {
		v    Violation
		want int
	}{
		{Violation{Invariant: invAppBudget, Detail: "app0 sent 31 token requests within an hour"}, 1},
		{Violation{Invariant: invNaverCompliant, Detail: `naver recorded: too many token requests: client "simApp0ClientXXXXXXXX" sent 136 token requests within an hour (budget 135)`}, 1},
		{Violation{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp0ClientXXXXXXXX|SELLER|ncp_app0_seller1 asked again while its token had 2h43m22s left (>= 30m0s) (last operator actions: d0+00:34:30 concurrent navercommerce-generate-token with navercommerce-delete-configuration at net:; d0+00:34:30 config-delete  [])"}, 2},
		{Violation{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp0ClientXXXXXXXX|SELLER|ncp_app0_seller1 asked again " + noteUnstoredDelete}, 3},
		{Violation{Invariant: invAppCounts, Detail: "app0 status counts 343 application requests in the last hour, but the plugin sent 44: 299 never sent"}, 4},
		{Violation{Invariant: invAppCounts, Detail: "app0 status counts 3 application requests in the last hour, but the plugin sent 5: 2 lost"}, 0},
		{Violation{Invariant: invOldAddress, Detail: "refused by the breaker"}, 5},
		{Violation{Invariant: invCachedNamed, Detail: "app0 status counts key SELLER|x as cached, but no role names it " + noteAfterRace + " (key SELLER|x; last operator actions: d0+01:00:00 concurrent navercommerce-generate-token with navercommerce-delete-role at net:)"}, 7},
		{Violation{Invariant: invCachedNamed, Detail: "app0 status counts key SELLER|x as cached, but no role names it (key SELLER|x)"}, 0},
		{Violation{Invariant: invServedAtOnce, Detail: "waited"}, 8},
		{Violation{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp0ClientXXXXXXXX|SELF| asked again " + noteVerifyAfterFault}, findingVerifyAfterStorageFault},
		{Violation{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp0ClientXXXXXXXX|SELF| asked again while its token had 1h left (last operator actions: d0+01:00:00 token-drop r1 [SELF|])"}, 0},
		{Violation{Invariant: invTokenValid, Detail: "served a token Naver never issued"}, 0},
	} {
		if got := classify25(tc.v); got != tc.want {
			t.Errorf("classify25(%s: %.60s) = %d, want %d", tc.v.Invariant, tc.v.Detail, got, tc.want)
		}
	}
}

// A violation that follows a known one on the same key shows the same item; one on
// another key does not.
func TestClassifyRunFollowsTheKey(t *testing.T) {
	r := Result{Violations: []Violation{
		{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp0ClientXXXXXXXX|SELLER|ncp_app0_seller1 asked again (last operator actions: d0+00:34:30 concurrent navercommerce-generate-token with navercommerce-delete-configuration at net:)"},
		{Invariant: invTokenValid, Detail: "app0 role r2: served expires_at X, but Naver's token dies at Y (key SELLER|ncp_app0_seller1; last operator actions: d0+01:00:00 role-create r2)"},
		{Invariant: invTokenValid, Detail: "app0 role r3: served expires_at X, but Naver's token dies at Y (key SELLER|ncp_app0_seller2; last operator actions: d0+01:00:00 role-create r3)"},
	}}
	got := classifyRun(r)
	if got[0] != 2 || got[1] != 2 || got[2] != 0 {
		t.Errorf("classifyRun = %v, want [2 2 0]", got)
	}
}
