module cfdiff

go 1.25
