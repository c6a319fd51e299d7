"""pagos: liquidaciones, Cuaderno 60 references and card payments through Redsys."""
