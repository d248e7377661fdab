module libgrey/grey

go 1.19
