package sandbox

import "testing"

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
`
	got, err := parseNetDev([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := InterfaceStats{Name: "eth0", RxBytes: 5000, RxPackets: 40, RxErrors: 1, RxDropped: 2, TxBytes: 3000, TxPackets: 30, TxErrors: 3, TxDropped: 4}
	if len(got) != 1 || got[0] != want {
		t.Errorf("parseNetDev = %+v, want [%+v]", got, want)
	}
	if _, err := parseNetDev([]byte("h\nh\neth0: 1 2 3\n")); err == nil {
		t.Error("short line parsed")
	}
}
