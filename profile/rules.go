package profile

import (
	"fmt"
	"path/filepath"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// Rules returns the interceptor rules that serve the tree seeded at root:
// each redirect G becomes rules.Redirect{Guest: G, Host: root/G}, and
// each fstype is parsed with rules.ParseFSType. A relative root is
// made absolute against the working directory. Dynamic entries are not
// rules yet; the interceptor will serve them itself.
func (p *Profile) Rules(root string) (rules.Rules, error) {
	if root == "" {
		return rules.Rules{}, fmt.Errorf("rules for profile %s: root is empty; pass the directory the tree was seeded in", p.Name)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return rules.Rules{}, fmt.Errorf("rules for profile %s: root %s: %w", p.Name, root, err)
	}
	var r rules.Rules
	for _, g := range p.Redirects {
		g = rules.CleanPath(g)
		r.Redirects = append(r.Redirects, rules.Redirect{Guest: g, Host: filepath.Join(abs, g)})
	}
	for i, s := range p.FSTypes {
		ft, err := rules.ParseFSType(s)
		if err != nil {
			return rules.Rules{}, errorf(p.Source, where("fstypes", i, ""), "%v", err)
		}
		r.FSTypes = append(r.FSTypes, ft)
	}
	if err := r.Validate(); err != nil {
		return rules.Rules{}, fmt.Errorf("rules for profile %s: %w", p.Name, err)
	}
	return r, nil
}
