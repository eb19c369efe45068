package profile

import (
	"fmt"
	"path/filepath"

	"github.com/nodeboot/nodeboot/interceptor"
)

// Rules returns the interceptor rules that serve the tree seeded at root:
// each redirect G becomes interceptor.Redirect{Guest: G, Host: root/G}, and
// each fstype is parsed with interceptor.ParseFSType. A relative root is
// made absolute against the working directory. Dynamic entries are not
// rules yet; the interceptor will serve them itself.
func (p *Profile) Rules(root string) (interceptor.Rules, error) {
	if root == "" {
		return interceptor.Rules{}, fmt.Errorf("rules for profile %s: root is empty; pass the directory the tree was seeded in", p.Name)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return interceptor.Rules{}, fmt.Errorf("rules for profile %s: root %s: %w", p.Name, root, err)
	}
	var r interceptor.Rules
	for _, g := range p.Redirects {
		g = interceptor.CleanPath(g)
		r.Redirects = append(r.Redirects, interceptor.Redirect{Guest: g, Host: filepath.Join(abs, g)})
	}
	for i, s := range p.FSTypes {
		ft, err := interceptor.ParseFSType(s)
		if err != nil {
			return interceptor.Rules{}, errorf(p.Source, where("fstypes", i, ""), "%v", err)
		}
		r.FSTypes = append(r.FSTypes, ft)
	}
	if err := r.Validate(); err != nil {
		return interceptor.Rules{}, fmt.Errorf("rules for profile %s: %w", p.Name, err)
	}
	return r, nil
}
