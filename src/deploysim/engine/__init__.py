"""deploysim.engine"""
