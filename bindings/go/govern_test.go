package grey_test

import (
	"errors"
	"testing"

	"libgrey/grey"
)

func TestGovernorAdmitReleaseAndStop(t *testing.T) {
	ctx, err := grey.NewContext(grey.WithBackends("host"))
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	gov, err := ctx.NewGovernor(0)
	if err != nil {
		t.Fatal(err)
	}
	defer gov.Close()
	tenant, err := gov.NewTenant("go", 2.0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tenant.Close()
	if err := gov.Step(); err != nil {
		t.Fatal(err)
	}
	a, err := tenant.Admit(0, 1000, grey.WaitForever)
	if err != nil {
		t.Fatal(err)
	}
	if y, err := tenant.ShouldYield(a.Ticket); err != nil || y {
		t.Fatalf("yield %v %v", y, err)
	}
	if err := tenant.Release(a.Ticket, 500); err != nil {
		t.Fatal(err)
	}
	s, err := tenant.Stats()
	if err != nil || s.Admitted != 1 || s.ActualCostNs != 500 || s.Name != "go" || s.Weight != 2.0 {
		t.Fatalf("stats %+v %v", s, err)
	}
	// A big admission empties the bucket: the next submit waits, and a poll says so.
	big, err := tenant.Admit(0, 10_000_000_000, 0)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := tenant.Submit(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.Wait(ticket, 0); !errors.Is(err, grey.ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	if err := gov.EmergencyStop("go test"); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.Wait(ticket, 0); !errors.Is(err, grey.ErrStopped) {
		t.Fatalf("want ErrStopped, got %v", err)
	}
	state, err := gov.State()
	if err != nil || !state.Stopped || state.StopReason != "go test" || state.Tenants != 1 {
		t.Fatalf("state %+v %v", state, err)
	}
	d, err := gov.Device(0)
	if err != nil || d.Mode != "stopped" {
		t.Fatalf("device %+v %v", d, err)
	}
	if err := gov.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := tenant.Release(big.Ticket, 1); err != nil {
		t.Fatal(err)
	}
	if err := tenant.SetWeight(-1); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}
	list, err := gov.Tenants()
	if err != nil || len(list) != 1 || list[0].Admitted != 2 {
		t.Fatalf("tenants %+v %v", list, err)
	}
	cfg, err := grey.NewConfig("aggressive")
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if err := gov.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	if state, _ := gov.State(); state.PriorityLevels != 5 || state.Proactive {
		t.Fatalf("after configure %+v", state)
	}
}
