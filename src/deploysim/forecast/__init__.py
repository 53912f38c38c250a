"""deploysim.forecast"""
