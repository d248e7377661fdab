module libgrey/samples

go 1.19

require libgrey/grey v0.0.0

replace libgrey/grey => ../../bindings/go
