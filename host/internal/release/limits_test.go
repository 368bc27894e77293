package release

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/distribution/reference"

	"coop/host/internal/rules"
)

// TestLimitsAreTheSharedTables compares the agent's limits with test/rules/cases.json's
// _limits, the table the program's schema (components/rules.ts LIMITS) is compared with too.
func TestLimitsAreTheSharedTables(t *testing.T) {
	raw, err := os.ReadFile("../../../test/rules/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Limits map[string]any `json:"_limits"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	delete(table.Limits, "_comment")
	ours := map[string]any{"domainsPerCoop": float64(maxDomains), "argumentLength": float64(maxArgLen), "imageNameLength": float64(rules.ImageNameLengthMax)}
	if rules.ImageNameLengthMax != reference.NameTotalLengthMax {
		t.Errorf("the image name limit %d is not Docker's %d", rules.ImageNameLengthMax, reference.NameTotalLengthMax)
	}
	if !reflect.DeepEqual(table.Limits, ours) {
		t.Errorf("the shared limits %v differ from the agent's %v", table.Limits, ours)
	}
}
