package main

import (
	"errors"
	"fmt"
	"time"
)

// The dev phase's scale test: many single-account roles.

// scale creates many roles over as many accounts, then times LIST and a warm read among
// them and reads the plugin's RSS.
func (e *env) scale(r *report) error {
	n := e.o.scaleRoles
	r.scale.roles = n
	var err error
	if r.scale.rssBefore, err = statusKiB(e.pluginPID, "VmRSS"); err != nil {
		return err
	}
	logf("scale: creating %d roles over %d accounts (%d concurrent writes)", n, n, e.o.scaleWorkers)
	t0 := time.Now()
	if err := parallel(n, e.o.scaleWorkers, func(i int) error {
		_, err := e.c.Logical().WriteWithContext(e.ctx, fmt.Sprintf("navercommerce/roles/scale-%05d", i),
			map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("scale-account-%05d", i)})
		return err
	}); err != nil {
		return err
	}
	r.scale.create = time.Since(t0)
	var listed int
	r.scale.list, err = timeN(7, func(int) error {
		s, err := e.c.Logical().ListWithContext(e.ctx, "navercommerce/roles")
		if err != nil {
			return err
		}
		if s == nil {
			return errors.New("LIST navercommerce/roles: no answer")
		}
		keys, _ := s.Data["keys"].([]any)
		listed = len(keys)
		return nil
	})
	if err != nil {
		return err
	}
	r.scale.listed = listed
	warmN := min(e.o.scaleWarm, n)
	if r.scale.warmFirst, err = timeN(warmN, func(i int) error {
		s, err := e.c.Logical().ReadWithContext(e.ctx, fmt.Sprintf("navercommerce/token/scale-%05d", i))
		if err == nil {
			err = leased(s)
		}
		return err
	}); err != nil {
		return err
	}
	one := fmt.Sprintf("navercommerce/token/scale-%05d", warmN/2)
	if r.scale.warmOne, err = timeN(500, func(int) error {
		s, err := e.c.Logical().ReadWithContext(e.ctx, one)
		if err == nil {
			err = leased(s)
		}
		return err
	}); err != nil {
		return err
	}
	if r.scale.rssAfter, err = statusKiB(e.pluginPID, "VmRSS"); err != nil {
		return err
	}
	r.scale.measuredAt = time.Now()
	r.scale.hwm, _ = statusKiB(e.pluginPID, "VmHWM")
	r.scale.noopRSS, _ = statusKiB(e.noopPID, "VmRSS")
	r.scale.vaultRSS, _ = statusKiB(e.v.Proc.Pid(), "VmRSS")
	logf("  %d roles in %s; LIST p50 %s (%d keys); warm read p50 %s; plugin RSS %.1f MiB",
		n, r.scale.create.Round(time.Millisecond), ms(r.scale.list.P50), listed, ms(r.scale.warmOne.P50), mib(r.scale.rssAfter))
	return nil
}
