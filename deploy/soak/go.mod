module github.com/socklab/socklab/deploy/soak

go 1.26.0
