package launch

import (
	"context"
	"os"
	"time"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/profile"
)

// process adapts *bootstrap.Process to handle.
type process struct{ p *bootstrap.Process }

func (p process) Wait() (interceptor.Exit, error) {
	e, err := p.p.Wait()
	if cerr := p.p.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return e, err
}

func (p process) Stop() error {
	_, err := p.p.Stop(context.Background(), 20*time.Second)
	return err
}

func (p process) Stats() interceptor.Stats { return p.p.Stats() }

func start(ctx context.Context, r Request) (handle, error) {
	prof, err := profile.Load("k3s")
	if err != nil {
		return nil, err
	}
	p, err := bootstrap.Launch(ctx, bootstrap.LaunchConfig{
		Profile: prof,
		Root:    r.Root,
		Path:    r.Argv[0],
		Args:    r.Argv,
		Env:     os.Environ(),
		Stdout:  r.Stdout,
		Stderr:  r.Stderr,
	})
	if err != nil {
		return nil, err
	}
	return process{p}, nil
}
