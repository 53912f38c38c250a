"""deploysim.cli"""
