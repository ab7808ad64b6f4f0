"""camera supervisor -> frame queue -> gate -> recognizer -> tracker -> store -> bus."""
